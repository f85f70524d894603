"""Read an image from any source: every layer scanned once (in parallel), checked, merged."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reprolock.errors import SourceError
from reprolock.image.rootfs import scan_rootfs
from reprolock.image.scan import (
    LayerScan,
    ReadBudget,
    WantContent,
    WantHash,
    WantKernels,
    Wants,
    WantSource,
    scan_layer,
)
from reprolock.image.source import Image, LayerRef
from reprolock.image.view import FilesystemView
from reprolock.model import Digest
from reprolock.model.oci import ImageConfig


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerFacts:
    index: int
    digest: str | None  # the stored blob's digest
    diff_id: str
    compressed_size: int
    uncompressed_size: int
    entries: int


@dataclass(slots=True, kw_only=True)
class ImageRead:
    """What an image holds, as far as reprolock looks."""

    description: str
    config: ImageConfig | None
    config_digest: str | None
    manifest_digest: str | None
    layers: list[LayerFacts] = field(default_factory=list)
    view: FilesystemView = field(default_factory=FilesystemView)
    scans: list[LayerScan] = field(default_factory=list)

    def view_of_first(self, count: int) -> FilesystemView:
        """The filesystem as the first ``count`` layers leave it (e.g. the base image's)."""
        return FilesystemView.merge(self.scans[:count])


def _scan(image: Image, layer: LayerRef, wants: Wants, budget: ReadBudget) -> LayerScan:
    what = f"{image.description} layer {layer.index}"
    with image.open_layer(layer) as stream:
        return scan_layer(
            stream,
            layer.index,
            what=what,
            want_content=wants.content,
            want_hash=wants.hash,
            want_md5=wants.md5,
            want_head=wants.head,
            want_source=wants.source,
            want_kernels=wants.kernels,
            budget=budget,
        )


def _scan_all(
    image: Image,
    layers: Sequence[LayerRef],
    wants: Wants,
    workers: int,
) -> list[LayerScan]:
    """Every layer scanned, ``workers`` at a time (the calling thread is one of them).

    After a failure no further layer is started, and the failure of the lowest layer is
    raised.  If fewer threads can be started than asked (a memory limit), fewer work.
    """
    budget = ReadBudget()  # one for the image: its layers together
    results: dict[int, LayerScan] = {}
    failures: dict[int, BaseException] = {}
    todo = iter(range(len(layers)))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                i = None if failures else next(todo, None)
            if i is None:
                return
            try:
                results[i] = _scan(image, layers[i], wants, budget)
            except BaseException as exc:  # raised again, in the calling thread
                with lock:
                    failures[i] = exc
                return

    helpers: list[threading.Thread] = []
    for _ in range(min(workers, len(layers)) - 1):
        thread = threading.Thread(target=work, daemon=True)
        try:
            thread.start()
        except RuntimeError:  # no more threads to be had: fewer workers
            break
        helpers.append(thread)
    work()
    for thread in helpers:
        thread.join()
    if failures:
        raise failures[min(failures)]
    return [results[i] for i in range(len(layers))]


def validate(
    image: Image, config: ImageConfig, layers: Sequence[LayerRef], scans: Sequence[LayerScan]
) -> None:
    """The checks every source must pass: diff_ids, blob digests and sizes agree."""
    what = image.description
    if len(config.diff_ids) != len(scans):
        raise SourceError(
            f"{what}: the config lists {len(config.diff_ids)} layers, the image has {len(scans)}.",
            hint="The image is damaged; rebuild it.",
        )
    for layer, scan, expected in zip(layers, scans, config.diff_ids, strict=True):
        if scan.diff_id != str(expected):
            raise SourceError(
                f"{what}: layer {layer.index} does not match the config's diff_id "
                f"(expected {expected}, read {scan.diff_id}).",
                hint="The image is damaged or was altered; do not use it.",
            )
        if layer.digest is not None and scan.blob_digest != str(layer.digest):
            raise SourceError(
                f"{what}: layer {layer.index} does not match its digest (expected "
                f"{layer.digest}, read {scan.blob_digest}).",
                hint="The image is damaged or was altered; do not use it.",
            )
        if layer.size is not None and scan.compressed_size != layer.size:
            raise SourceError(
                f"{what}: layer {layer.index} is {scan.compressed_size} bytes, the manifest "
                f"says {layer.size}.",
                hint="The image is damaged; rebuild it.",
            )
    manifest = image.manifest()
    if manifest is not None and Digest.of(image.config_bytes()) != manifest.config.digest:
        raise SourceError(
            f"{what}: the config does not match the manifest's config digest.",
            hint="The image is damaged or was altered; do not use it.",
        )


def read_image(
    image: Image,
    *,
    want_content: WantContent,
    want_hash: WantHash,
    want_md5: WantHash | None = None,
    want_head: WantHash | None = None,
    want_source: WantSource | None = None,
    want_kernels: WantKernels | None = None,
    workers: int = 4,
) -> ImageRead:
    """Scan, validate and merge ``image``; `SourceError` on anything wrong.  What the scans
    keep of each file is asked by the ``want_*`` predicates (`reprolock.image.scan.Wants`)."""
    config = image.config()
    layers = list(image.layers())
    wants = _wants(want_content, want_hash, want_md5, want_head, want_source, want_kernels)
    scans = _scan_all(image, layers, wants, workers)
    validate(image, config, layers, scans)
    digest = image.manifest_digest()
    return ImageRead(
        description=image.description,
        config=config,
        config_digest=str(Digest.of(image.config_bytes())),
        manifest_digest=None if digest is None else str(digest),
        layers=[
            LayerFacts(
                index=s.index,
                digest=None if r.digest is None else str(r.digest),
                diff_id=s.diff_id,
                compressed_size=s.compressed_size,
                uncompressed_size=s.uncompressed_size,
                entries=len(s.entries),
            )
            for r, s in zip(layers, scans, strict=True)
        ],
        view=FilesystemView.merge(scans),
        scans=scans,
    )


def read_rootfs(
    path: Path,
    *,
    want_content: WantContent,
    want_hash: WantHash,
    want_md5: WantHash | None = None,
    want_head: WantHash | None = None,
    want_source: WantSource | None = None,
    want_kernels: WantKernels | None = None,
) -> ImageRead:
    wants = _wants(want_content, want_hash, want_md5, want_head, want_source, want_kernels)
    scan = scan_rootfs(
        path,
        want_content=wants.content,
        want_hash=wants.hash,
        want_md5=wants.md5,
        want_head=wants.head,
        want_source=wants.source,
        want_kernels=wants.kernels,
    )
    return ImageRead(
        description=f"dir:{path}",
        config=None,
        config_digest=None,
        manifest_digest=None,
        view=FilesystemView.merge([scan]),
    )


def _wants(
    content: WantContent,
    sha256: WantHash,
    md5: WantHash | None,
    head: WantHash | None,
    source: WantSource | None,
    kernels: WantKernels | None,
) -> Wants:
    wants = Wants(content, sha256)
    return Wants(
        content,
        sha256,
        md5 or wants.md5,
        head or wants.head,
        source or wants.source,
        kernels or wants.kernels,
    )
