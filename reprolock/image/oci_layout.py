"""OCI image layouts: a folder (``oci:PATH[:TAG]``) or a tar of one (``oci-archive:PATH``).

Every read is bounded before it starts: ``index.json`` and manifests by
``limits.manifest_bytes``, the config by ``limits.config_bytes`` and by its descriptor's
size, a layer by its descriptor's size (a blob of another size is refused before it is
read).  In a folder, only regular files inside it are read (`reprolock.image.files`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from reprolock import limits
from reprolock.bounded import read_capped
from reprolock.errors import SourceError
from reprolock.image.docker_archive import TarMembers
from reprolock.image.files import inside, open_regular, window
from reprolock.image.source import LayerRef, config_of
from reprolock.model import Digest, Platform
from reprolock.model.oci import (
    OCI_INDEX,
    Descriptor,
    ImageConfig,
    Index,
    Manifest,
    parse_manifest,
)

REF_NAME = "org.opencontainers.image.ref.name"
_HINT = "Check that it is a complete OCI image layout (index.json and blobs/)."


@dataclass(frozen=True, slots=True)
class Opened:
    """A file of the layout, open, and its size."""

    stream: IO[bytes]
    size: int


class LayoutFiles(Protocol):
    """Where a layout's files come from (a folder or an archive)."""

    def open(self, name: str) -> Opened:
        """``name`` (``index.json`` or ``blobs/sha256/<hex>``); FileNotFoundError if absent."""
        ...

    def close(self) -> None:
        """Release what `open` needs (files stay readable until they are closed)."""
        ...


class OciLayout:
    """An OCI layout read through ``files`` (a folder or an archive)."""

    def __init__(
        self,
        description: str,
        files: LayoutFiles,
        *,
        tag: str | None,
        platform: Platform,
    ) -> None:
        """Takes ``files`` over (closed by `close`, or here when the layout is refused)."""
        self.description = description
        self._files = files
        self._config: bytes | None = None
        try:
            self._manifest_digest, self._manifest = self._select(self._index(), tag, platform)
        except BaseException:
            files.close()
            raise

    def _index(self) -> Index:
        data = self._read("index.json", limits.current().manifest_bytes, "manifest_bytes")
        index = self._document(data, "index.json")
        if not isinstance(index, Index):
            raise SourceError(f"{self.description}: index.json is not an index.", hint=_HINT)
        return index

    def _open(self, name: str) -> Opened:
        try:
            return self._files.open(name)
        except FileNotFoundError:
            raise SourceError(f"{self.description}: has no {name}.", hint=_HINT) from None

    def _read(self, name: str, cap: int, limit_name: str) -> bytes:
        opened = self._open(name)
        what = f"{self.description}: {name}"
        with opened.stream:
            if opened.size > cap:
                raise limits.exceeded(what, limit_name, actual=f"{opened.size} bytes")
            return read_capped(opened.stream, cap, what, limit_name)

    def blob(self, descriptor: Descriptor, cap: int, limit_name: str) -> bytes:
        """A blob no larger than ``cap`` nor than its descriptor says, checked against
        its digest."""
        digest = descriptor.digest
        name = _blob_name(digest)
        if descriptor.size > cap:
            raise limits.exceeded(
                f"{self.description}: blob {digest}",
                limit_name,
                actual=f"{descriptor.size} bytes declared",
            )
        opened = self._open(name)
        with opened.stream:
            self._check_size(opened.size, descriptor, f"blob {digest}")
            data = read_capped(
                opened.stream, descriptor.size, f"{self.description}: {name}", limit_name
            )
        if Digest.of(data) != digest:
            raise SourceError(
                f"{self.description}: blob {digest} does not match its digest.",
                hint="The layout was altered; do not use it.",
            )
        return data

    def _check_size(self, size: int, descriptor: Descriptor, what: str) -> None:
        if size != descriptor.size:
            raise SourceError(
                f"{self.description}: {what} does not match its descriptor: the blob is "
                f"{size} bytes, the descriptor says {descriptor.size}.",
                hint="The layout was altered or is damaged; do not use it.",
            )

    def _document(self, data: bytes, name: str, media_type: str = OCI_INDEX) -> Manifest | Index:
        try:
            return parse_manifest(data, media_type)
        except ValueError as exc:
            raise SourceError(f"{self.description}: {name}: {exc}.", hint=_HINT) from None

    def _select(self, index: Index, tag: str | None, platform: Platform) -> tuple[Digest, Manifest]:
        if not index.manifests:
            raise SourceError(f"{self.description}: index.json lists no image.", hint=_HINT)
        if tag is not None:
            chosen = tuple(m for m in index.manifests if m.annotation(REF_NAME) == tag)
            if not chosen:
                names = sorted({n for m in index.manifests if (n := m.annotation(REF_NAME))})
                raise SourceError(
                    f'{self.description}: has no image named "{tag}".',
                    hint=f"Names in index.json: {', '.join(names) or 'none'}.",
                )
            index = Index(media_type=index.media_type, manifests=chosen)
        return self._descend(index, platform, depth=0)

    def _descend(self, index: Index, platform: Platform, depth: int) -> tuple[Digest, Manifest]:
        if depth > 4:
            raise SourceError(f"{self.description}: indexes nest too deeply.", hint=_HINT)
        entry: Descriptor | None
        if len(index.manifests) == 1 and index.manifests[0].platform is None:
            entry = index.manifests[0]
        else:
            entry = index.for_platform(platform)
        if entry is None:
            raise SourceError(
                f"{self.description}: has no image for {platform}; it has "
                f"{', '.join(index.platforms()) or 'none'}.",
                hint="Pass --platform.",
            )
        data = self.blob(entry, limits.current().manifest_bytes, "manifest_bytes")
        document = self._document(data, f"manifest {entry.digest}", entry.media_type)
        if isinstance(document, Index):
            return self._descend(document, platform, depth + 1)
        return entry.digest, document

    def config_bytes(self) -> bytes:
        if self._config is None:
            self._config = self.blob(
                self._manifest.config, limits.current().config_bytes, "config_bytes"
            )
        return self._config

    def config(self) -> ImageConfig:
        return config_of(self.config_bytes(), self.description)

    def manifest(self) -> Manifest | None:
        return self._manifest

    def manifest_digest(self) -> Digest | None:
        return self._manifest_digest

    def layers(self) -> Sequence[LayerRef]:
        return [
            LayerRef(
                index=i,
                digest=d.digest,
                size=d.size,
                media_type=d.media_type,
                location=_blob_name(d.digest),
            )
            for i, d in enumerate(self._manifest.layers)
        ]

    @contextlib.contextmanager
    def open_layer(self, layer: LayerRef) -> Iterator[IO[bytes]]:
        """The layer's blob, refused before reading if its size is not the descriptor's."""
        opened = self._open(layer.location)
        with opened.stream:
            descriptor = self._manifest.layers[layer.index]
            self._check_size(opened.size, descriptor, f"layer {layer.index}")
            yield opened.stream

    def close(self) -> None:
        self._files.close()


def _blob_name(digest: Digest) -> str:
    return f"blobs/{digest.algorithm}/{digest.hex}"


class _Folder:
    """A layout folder: regular files inside it only."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def open(self, name: str) -> Opened:
        what = f"oci:{self.root}"
        file = open_regular(inside(self.root, name, what), what, follow=False)
        size = os.fstat(file.fileno()).st_size
        # a window of the size seen now: a file that grows while it is read is not read on;
        # unbuffered, as `TarMembers.open`
        stream = window(file.fileno(), 0, size, f"{what}: {name}", owner=file, buffered=False)
        return Opened(stream, size)

    def close(self) -> None:
        pass


class _Archive:
    """A tar of a layout (``oci-archive:``)."""

    def __init__(self, members: TarMembers) -> None:
        self.members = members

    def open(self, name: str) -> Opened:
        if not self.members.has(name):
            raise FileNotFoundError(name)
        return Opened(self.members.open(name), self.members.size(name))

    def close(self) -> None:
        self.members.close()


def open_oci_dir(path: Path, *, tag: str | None, platform: Platform) -> OciLayout:
    if not (path / "index.json").is_file():
        raise SourceError(f"{path}: is not an OCI image layout (no index.json).", hint=_HINT)
    return OciLayout(f"oci:{path}", _Folder(path), tag=tag, platform=platform)


def open_oci_archive(path: Path, *, tag: str | None, platform: Platform) -> OciLayout:
    description = f"oci-archive:{path}"
    members = TarMembers.from_path(path, description)
    return OciLayout(description, _Archive(members), tag=tag, platform=platform)
