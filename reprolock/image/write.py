"""Writing images: content-addressed blob folders, OCI layouts (a folder or a tar of one)
and ``docker save``-style archives (``docker load`` reads them).

Archives are deterministic: members sorted, headers from `reprolock.image.tarwrite` with
the time given (the build's epoch), files 0644, folders 0755, owned by root.  Every file
is written under a temporary name and renamed into place once complete (a killed write
leaves no half archive, a link in the way is replaced, never followed); an OCI folder's
``index.json`` is written last.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from reprolock import limits
from reprolock.bounded import STEP, read_capped
from reprolock.errors import SourceError
from reprolock.image.files import open_regular
from reprolock.image.oci_layout import REF_NAME
from reprolock.image.tarwrite import END, header, padding
from reprolock.model import Digest, Platform
from reprolock.model.oci import OCI_INDEX, OCI_MANIFEST, load_json

LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'


def _json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


class BlobDir:
    """``<root>/blobs/sha256/<hex>`` files, each named by the sha256 of its bytes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.folder = root / "blobs" / "sha256"

    def path(self, digest: Digest) -> Path:
        return self.folder / digest.hex

    def has(self, digest: Digest, size: int) -> bool:
        """A regular file of that size is there (its content is checked when it is read
        with `open`, or by whoever put it there: `put` and `writer` hash)."""
        try:
            info = self.path(digest).lstat()
        except OSError:
            return False
        return info.st_size == size and (info.st_mode & 0o170000) == 0o100000

    def _make(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SourceError(
                f"cannot create {self.folder}: {exc.strerror or exc}.",
                hint="Check that the folder is writable.",
            ) from None

    @contextlib.contextmanager
    def writer(self) -> Iterator[tuple[IO[bytes], list[Digest]]]:
        """A temporary file in the folder; the caller appends the digest of what it wrote
        to the list, and the file is renamed to it on exit (removed on failure)."""
        self._make()
        fd, name = tempfile.mkstemp(prefix=".partial-", dir=self.folder)
        named: list[Digest] = []
        try:
            with os.fdopen(fd, "wb") as out:
                yield out, named
            assert len(named) == 1, "a blob writer names its blob once"
            Path(name).replace(self.path(named[0]))
        except OSError as exc:
            Path(name).unlink(missing_ok=True)
            raise _write_error(self.folder, exc) from None
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise

    def put(self, data: bytes) -> Digest:
        digest = Digest.of(data)
        if not self.has(digest, len(data)):
            with self.writer() as (out, named):
                out.write(data)
                named.append(digest)
        return digest

    def copy_in(self, stream: IO[bytes], digest: Digest, size: int, what: str) -> None:
        """``stream`` stored as ``digest``, checked against it and ``size``."""
        with self.writer() as (out, named):
            hasher = hashlib.sha256()
            got = 0
            while chunk := stream.read(STEP):
                got += len(chunk)
                if got > size:
                    raise SourceError(f"{what}: longer than its {size} bytes.")
                hasher.update(chunk)
                out.write(chunk)
            if got != size or hasher.hexdigest() != digest.hex:
                raise SourceError(
                    f"{what}: does not match its digest {digest}.",
                    hint="The source altered it; do not use it.",
                )
            named.append(digest)

    def open(self, digest: Digest) -> IO[bytes]:
        try:
            return open_regular(self.path(digest), f"blob {digest}", follow=False)
        except FileNotFoundError:
            raise SourceError(f"{self.folder}: blob {digest} is missing.") from None

    def verify(self, digest: Digest, size: int) -> bool:
        """Whether the stored blob is exactly ``digest`` (a cache can be damaged)."""
        if not self.has(digest, size):
            return False
        hasher = hashlib.sha256()
        try:
            with self.open(digest) as handle:
                while chunk := handle.read(STEP):
                    hasher.update(chunk)
        except (OSError, SourceError):
            return False
        return hasher.hexdigest() == digest.hex


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageBlobs:
    """An image to write: its manifest and config bytes, its layers' digests and sizes,
    and where each blob is kept."""

    manifest: bytes
    config: bytes
    layers: Sequence[tuple[Digest, int]]
    platform: Platform
    stores: Sequence[BlobDir]  # searched in order for each layer

    @property
    def manifest_digest(self) -> Digest:
        return Digest.of(self.manifest)

    @property
    def config_digest(self) -> Digest:
        return Digest.of(self.config)

    def store_of(self, digest: Digest, size: int) -> BlobDir:
        for store in self.stores:
            if store.has(digest, size):
                return store
        raise SourceError(f"blob {digest} is missing from the build's folders.")

    def descriptor(self, tag: str | None) -> dict[str, Any]:
        platform: dict[str, str] = {
            "architecture": self.platform.architecture,
            "os": self.platform.os,
        }
        if self.platform.variant:
            platform["variant"] = self.platform.variant
        entry: dict[str, Any] = {
            "mediaType": OCI_MANIFEST,
            "digest": str(self.manifest_digest),
            "size": len(self.manifest),
            "platform": platform,
        }
        if tag:
            entry["annotations"] = {REF_NAME: tag}
        return entry


def _write_error(path: Path, exc: OSError) -> SourceError:
    return SourceError(
        f"cannot write {path}: {exc.strerror or exc}.",
        hint="Check that the folder is writable and the disk not full.",
    )


def write_oci_dir(folder: Path, image: ImageBlobs, tag: str | None) -> None:
    """The image into the OCI layout ``folder`` (created if need be); other images of its
    ``index.json`` are kept, one with the same name (or, unnamed, the same platform)
    is replaced."""
    blobs = BlobDir(folder)
    for digest, size in image.layers:
        if not blobs.has(digest, size):
            with image.store_of(digest, size).open(digest) as source:
                blobs.copy_in(source, digest, size, f"layer {digest}")
    blobs.put(image.config)
    blobs.put(image.manifest)
    kept = [
        entry
        for entry in _old_index(folder)
        if entry.get("annotations", {}).get(REF_NAME) != tag
        and (tag is not None or entry.get("platform") != image.descriptor(None)["platform"])
    ]
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [*kept, image.descriptor(tag)],
    }
    try:
        _replace(folder / "oci-layout", LAYOUT)
        _replace(folder / "index.json", _json(index))
    except OSError as exc:
        raise _write_error(folder, exc) from None


def _old_index(folder: Path) -> list[dict[str, Any]]:
    """The entries of an existing ``index.json`` (none when there is none or it is not an
    index this reprolock can read)."""
    path = folder / "index.json"
    if not path.exists():
        return []
    what = f"oci:{folder}: index.json"
    with open_regular(path, what, follow=False) as handle:
        data = read_capped(handle, limits.current().manifest_bytes, what, "manifest_bytes")
    try:
        value = load_json(data, "index.json")
    except ValueError as exc:
        raise SourceError(f"{what}: {exc}.", hint="Write the image to another folder.") from None
    entries = value.get("manifests") if isinstance(value, dict) else None
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def _replace(path: Path, data: bytes) -> None:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        Path(name).chmod(0o644)
        Path(name).replace(path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


@dataclass(frozen=True, slots=True)
class _Member:
    name: str
    data: bytes | None = None  # a small file
    blob: tuple[BlobDir, Digest, int] | None = None  # or a blob, streamed


def _archive(path: Path, members: list[_Member], mtime: int) -> None:
    """A tar of ``members`` (and the folders they need), written beside ``path`` and
    renamed over it."""
    folders = sorted({m.name.rsplit("/", 1)[0] for m in members if "/" in m.name})
    parents = sorted({p for f in folders for p in _ancestors(f)})
    entries: list[tuple[str, _Member | None]] = [(f, None) for f in parents]
    entries += [(m.name, m) for m in members]
    entries.sort(key=lambda e: e[0].encode())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    except OSError as exc:
        raise _write_error(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as out:
            for entry_name, member in entries:
                if member is None:
                    out.write(header(entry_name, "dir", mode=0o755, mtime=mtime))
                    continue
                if member.data is not None:
                    out.write(
                        header(entry_name, "file", mode=0o644, size=len(member.data), mtime=mtime)
                    )
                    out.write(member.data + padding(len(member.data)))
                    continue
                assert member.blob is not None
                store, digest, size = member.blob
                out.write(header(entry_name, "file", mode=0o644, size=size, mtime=mtime))
                _copy_blob(store, digest, size, out)
                out.write(padding(size))
            out.write(END)
            out.flush()
            os.fsync(out.fileno())
        Path(name).chmod(0o644)
        Path(name).replace(path)
    except OSError as exc:
        Path(name).unlink(missing_ok=True)
        raise _write_error(path, exc) from None
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def _copy_blob(store: BlobDir, digest: Digest, size: int, out: IO[bytes]) -> None:
    with store.open(digest) as source:
        copied = 0
        while chunk := source.read(STEP):
            copied += len(chunk)
            out.write(chunk)
    if copied != size:
        raise SourceError(f"blob {digest} changed while it was written.")


def _ancestors(folder: str) -> list[str]:
    parts = folder.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _blob_members(image: ImageBlobs) -> list[_Member]:
    members = [
        _Member(f"blobs/sha256/{image.config_digest.hex}", data=image.config),
        _Member(f"blobs/sha256/{image.manifest_digest.hex}", data=image.manifest),
    ]
    for digest, size in image.layers:
        members.append(
            _Member(f"blobs/sha256/{digest.hex}", blob=(image.store_of(digest, size), digest, size))
        )
    unique = {m.name: m for m in members}
    return list(unique.values())


def write_oci_archive(path: Path, image: ImageBlobs, tag: str | None, *, mtime: int) -> None:
    """A tar of an OCI layout holding the image (``oci-archive:``)."""
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [image.descriptor(tag)]}
    members = [
        _Member("oci-layout", data=LAYOUT),
        _Member("index.json", data=_json(index)),
        *_blob_members(image),
    ]
    _archive(path, members, mtime)


def write_docker_archive(path: Path, image: ImageBlobs, tag: str | None, *, mtime: int) -> None:
    """What ``docker save`` writes (since Docker 25: an OCI layout with ``manifest.json``):
    ``docker load`` takes it, compressed layers and all."""
    entry = {
        "Config": f"blobs/sha256/{image.config_digest.hex}",
        "RepoTags": [tag] if tag else None,
        "Layers": [f"blobs/sha256/{digest.hex}" for digest, _ in image.layers],
    }
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [image.descriptor(tag)]}
    members = [
        _Member("oci-layout", data=LAYOUT),
        _Member("index.json", data=_json(index)),
        _Member("manifest.json", data=_json([entry])),
        *_blob_members(image),
    ]
    _archive(path, members, mtime)
