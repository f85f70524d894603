"""The base of a build: pulled by its locked digest, cached, read once.

Layers are cached in ``<cache>/layers/blobs/sha256/<hex>`` under the digest of what the
registry sent (checked as it arrives, checked again before each reuse) and copied into
the output byte for byte.  Only tar layers (plain, gzip, zstd) are copied; foreign or
encrypted layers are refused.  The layers are scanned once, in parallel, keeping only
the files the layers above read (dpkg's records, the accounts, `reprolock.build.apt`).
"""

from __future__ import annotations

import io
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from reprolock import limits
from reprolock.api.network import NetOptions
from reprolock.build.apt import wanted
from reprolock.errors import InputError, SourceError
from reprolock.image.registry_source import ChunkStream
from reprolock.image.scan import LayerScan, scan_layer
from reprolock.image.view import FilesystemView
from reprolock.image.write import BlobDir
from reprolock.lock import LockedTarget
from reprolock.model import Digest, ImageRef
from reprolock.model.oci import (
    DOCKER_LAYER_GZIP,
    OCI_LAYER_GZIP,
    OCI_LAYER_TAR,
    OCI_LAYER_ZSTD,
    Manifest,
    load_json,
    parse_config,
    parse_manifest,
)
from reprolock.registry import RegistryClient

_LAYER_TYPES = frozenset({OCI_LAYER_GZIP, OCI_LAYER_TAR, OCI_LAYER_ZSTD, DOCKER_LAYER_GZIP})


@dataclass(slots=True, kw_only=True)
class PulledBase:
    """The locked base: its config (parsed JSON), its layers in the cache, and the merged
    view of them (paths, and the files the layers above read)."""

    ref: ImageRef  # its name, without the digest
    config: dict[str, Any]
    layers: list[tuple[Digest, int, str]]  # digest, size, media type (as in the manifest)
    diff_ids: tuple[str, ...]
    view: FilesystemView


def pull_base(
    target: LockedTarget, client: RegistryClient, cache: BlobDir, *, offline: bool
) -> PulledBase:
    """The base by its locked manifest digest; its config digest and diff_ids compared
    with the lock; each layer cached by digest (checked) unless the cache has it."""
    base = target.base
    assert base is not None
    tid = target.id
    try:
        named = ImageRef.parse(base.ref.split("@", 1)[0])
    except ValueError as exc:
        raise InputError(f"{tid}: base ref: {exc}.") from None
    digest = Digest.parse(base.manifest_digest)
    ref = ImageRef(registry=named.registry, repository=named.repository, tag=None, digest=digest)
    manifest, config_bytes = _manifest(target, ref, client, cache, offline=offline)
    config_digest = manifest.config.digest
    if base.config_digest and str(config_digest) != base.config_digest:
        raise SourceError(
            f"{named.familiar}@{digest}: its config is {config_digest}, the lock says "
            f"{base.config_digest}."
        )
    try:
        parsed = parse_config(config_bytes)
        config = load_json(config_bytes, "image config")
    except ValueError as exc:
        raise SourceError(f"{named.familiar}: bad image config: {exc}.") from None
    assert isinstance(config, dict)
    if (parsed.os, parsed.architecture) != (target.platform.os, target.platform.architecture):
        raise SourceError(
            f"{named.familiar}@{digest} is an image for {parsed.os}/{parsed.architecture}, not "
            f"{target.platform}."
        )
    diff_ids = tuple(str(d) for d in parsed.diff_ids)
    if base.diff_ids and diff_ids != base.diff_ids:
        raise SourceError(f"{named.familiar}@{digest}: its layers are not the locked ones.")
    layers = []
    for i, layer in enumerate(manifest.layers):
        if layer.media_type and layer.media_type not in _LAYER_TYPES:
            raise SourceError(
                f"{named.familiar}: layer {i} is {layer.media_type}, which reprolock build "
                "does not copy (only tar layers, plain, gzip or zstd).",
            )
        layers.append((layer.digest, layer.size, layer.media_type or OCI_LAYER_GZIP))
        if cache.verify(layer.digest, layer.size):
            continue
        if offline:
            raise SourceError(
                f"--offline: layer {layer.digest} of {named.familiar} is not in the cache."
            )
        chunks = client.open_blob(ref, layer.digest, size=layer.size)
        with cast(IO[bytes], io.BufferedReader(ChunkStream(chunks), 1 << 20)) as stream:
            cache.copy_in(stream, layer.digest, layer.size, f"{named.familiar} {layer.digest}")
    view = _scan_base(cache, layers, named.familiar)
    return PulledBase(ref=named, config=config, layers=layers, diff_ids=diff_ids, view=view)


def _manifest(
    target: LockedTarget, ref: ImageRef, client: RegistryClient, cache: BlobDir, *, offline: bool
) -> tuple[Manifest, bytes]:
    """The locked manifest and its config: from the cache (checked against their
    digests), else from the registry (and then cached), so a second build of the lock, or
    one ``--offline``, asks the registry nothing."""
    digest = ref.digest
    assert digest is not None
    cached = _cached(cache, digest)
    if cached is not None:
        try:
            manifest = parse_manifest(cached, "")
        except ValueError:
            manifest = None
        if isinstance(manifest, Manifest):
            config = _cached(cache, manifest.config.digest)
            if config is not None:
                return manifest, config
    if offline:
        raise SourceError(
            f"--offline: the base {ref.familiar} of {target.id} is not in the cache.",
            hint="Build once online (the base's layers are cached by digest).",
        )
    pinned = client.resolve(ref, target.platform)
    if pinned.manifest_digest != digest:
        raise SourceError(f"{ref.familiar}: the registry sent another manifest than {digest}.")
    cache.put(pinned.manifest_bytes)
    cache.put(pinned.config_bytes)
    return pinned.manifest, pinned.config_bytes


def _cached(cache: BlobDir, digest: Digest) -> bytes | None:
    """A small blob (a manifest, a config) from the cache, if it is there and intact."""
    path = cache.path(digest)
    try:
        size = path.lstat().st_size
    except OSError:
        return None
    if size > limits.current().config_bytes or not cache.verify(digest, size):
        return None
    with cache.open(digest) as handle:
        data = handle.read()
    return data if Digest.of(data) == digest else None


def _never(_path: str) -> bool:
    return False


def _scan_base(cache: BlobDir, layers: list[tuple[Digest, int, str]], name: str) -> FilesystemView:
    """The base's layers read once (in parallel): its paths, and the files the layers
    above need."""

    def scan(item: tuple[int, tuple[Digest, int, str]]) -> LayerScan:
        index, (digest, _size, _type) = item
        with cache.open(digest) as stream:
            return scan_layer(
                stream,
                index,
                what=f"{name} layer {index}",
                want_content=wanted,
                want_hash=_never,
            )

    with ThreadPoolExecutor(max_workers=max(1, min(4, len(layers)))) as pool:
        scans = list(pool.map(scan, enumerate(layers)))
    return FilesystemView.merge(scans)


def cache_root(net: NetOptions) -> Path:
    root = (net.cache_dir or Path(tempfile.gettempdir()) / "reprolock-cache") / "layers"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SourceError(f"cannot create {root}: {exc.strerror or exc}.") from None
    return root
