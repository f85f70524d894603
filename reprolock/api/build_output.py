"""Where a build goes: an OCI layout, an OCI or docker archive, or a registry; and the
record of its digests beside the lock (`reprolock.build.record`)."""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from reprolock.api.build_base import PulledBase
from reprolock.atomic import replace_file
from reprolock.build import record as records
from reprolock.errors import InputError, SourceError
from reprolock.image.write import (
    ImageBlobs,
    write_docker_archive,
    write_oci_archive,
    write_oci_dir,
)
from reprolock.lock.io import read_bytes
from reprolock.model import ImageRef, grammar
from reprolock.model.oci import OCI_MANIFEST
from reprolock.registry import RegistryClient

OUTPUTS = ("oci", "oci-archive", "docker-archive", "registry")


@dataclass(frozen=True, slots=True, kw_only=True)
class Output:
    transport: str
    target: str  # a path or an image reference
    tag: str | None = None

    def __str__(self) -> str:
        return f"{self.transport}:{self.target}" + (f":{self.tag}" if self.tag else "")


def parse_output(text: str) -> Output:
    """``oci:DIR[:TAG]``, ``oci-archive:FILE[:TAG]``, ``docker-archive:FILE[:NAME:TAG]``,
    ``registry:REF``."""
    transport, sep, rest = text.partition(":")
    if not sep or transport not in OUTPUTS or not rest.strip():
        raise InputError(
            f"--output {text!r} is not an output reprolock build writes.",
            hint="Write oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG] "
            "or registry:REF.",
        )
    if transport == "registry":
        try:
            ImageRef.parse(rest)
        except ValueError as exc:
            raise InputError(f"--output {text!r}: {exc}.") from None
        return Output(transport=transport, target=rest)
    path, tag = rest, None
    if transport == "docker-archive" and ":" in rest:
        path, _, tag = rest.partition(":")  # docker-archive:FILE:name:tag
    elif ":" in rest:
        path, _, tag = rest.rpartition(":")
    if tag is not None and (not tag or grammar.has_control(tag) or " " in tag):
        raise InputError(f"--output {text!r}: the name after {path}: is not usable.")
    return Output(transport=transport, target=path, tag=tag or None)


@contextlib.contextmanager
def staging(output: Output, cache: Path) -> Iterator[Path]:
    """Where the new layers are written first: the output folder itself for ``oci:``,
    else a temporary folder beside the output file (or in the cache, for a registry)."""
    if output.transport == "oci":
        folder = Path(output.target)
        folder.mkdir(parents=True, exist_ok=True)
        yield folder
        return
    parent = Path(output.target).parent if output.transport != "registry" else cache
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".reprolock-build-", dir=parent) as name:
            yield Path(name)
    except OSError as exc:
        raise SourceError(f"cannot write in {parent}: {exc.strerror or exc}.") from None


def write_output(
    output: Output, blobs: ImageBlobs, base: PulledBase, client: RegistryClient, epoch: int
) -> None:
    if output.transport == "oci":
        write_oci_dir(Path(output.target), blobs, output.tag)
    elif output.transport == "oci-archive":
        write_oci_archive(Path(output.target), blobs, output.tag, mtime=epoch)
    elif output.transport == "docker-archive":
        write_docker_archive(Path(output.target), blobs, output.tag, mtime=epoch)
    else:
        _push(ImageRef.parse(output.target), blobs, base, client)


def _push(ref: ImageRef, blobs: ImageBlobs, base: PulledBase, client: RegistryClient) -> None:
    same = base.ref.registry == ref.registry
    base_layers = {d for d, _, _ in base.layers}
    for digest, size in [*blobs.layers, (blobs.config_digest, len(blobs.config))]:
        store = blobs.store_of(digest, size) if digest != blobs.config_digest else None
        if store is None:
            client.push_blob(ref, digest, size, lambda: io.BytesIO(blobs.config))
            continue
        client.push_blob(
            ref,
            digest,
            size,
            lambda store=store, digest=digest: store.open(digest),  # type: ignore[misc]
            mount_from=base.ref.repository if same and digest in base_layers else None,
        )
    reference = ref.tag or str(blobs.manifest_digest)
    client.push_manifest(ref, reference, blobs.manifest, OCI_MANIFEST)
    if ref.digest is not None and ref.digest != blobs.manifest_digest:
        raise SourceError(
            f"--output registry:{ref.familiar}: the image's digest is {blobs.manifest_digest}."
        )


def write_record(lock_path: Path, lock_digest: str, target_id: str, built: records.Built) -> Path:
    """``built`` as ``target_id``'s entry in ``reprolock.build.toml`` beside the lock (the
    entries of another lock are dropped, those of other targets kept)."""
    where = lock_path.parent / records.NAME
    previous: dict[str, records.Built] = {}
    with contextlib.suppress(InputError, SourceError, UnicodeDecodeError):
        old = read_record(lock_path)
        if old is not None and old.lock_digest == lock_digest:
            previous = dict(old.targets)
    previous[target_id] = built
    text = records.to_text(records.BuildRecord(lock_digest=lock_digest, targets=previous))
    try:
        replace_file(where, text.encode(), durable=True)
    except OSError as exc:
        raise SourceError(f"cannot write {where}: {exc.strerror or exc}.") from None
    return where


def read_record(lock_path: Path) -> records.BuildRecord | None:
    """The build record beside ``lock_path``, if there is one."""
    where = lock_path.parent / records.NAME
    if not where.exists():
        return None
    data = read_bytes(where, what=str(where))
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise InputError(f"{where}: not UTF-8.") from None
    return records.parse(text, str(where))
