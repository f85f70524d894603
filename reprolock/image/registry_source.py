"""Images read straight from a registry (``registry:REF``), layers streamed by digest."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Sequence
from typing import IO

from reprolock.image.source import LayerRef
from reprolock.model import Digest, ImageRef, Platform
from reprolock.model.oci import ImageConfig, Manifest
from reprolock.registry import PinnedImage, RegistryClient


class ChunkStream(io.RawIOBase):
    """A file-like view of an iterator of byte chunks (closing it ends the iterator)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.pending = b""

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        close = getattr(self.chunks, "close", None)  # a generator: ends its request
        if close is not None:
            close()
        super().close()

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self.pending:
            try:
                self.pending = next(self.chunks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self.pending))
        buffer[:size] = self.pending[:size]
        self.pending = self.pending[size:]
        return size


class RegistryImage:
    def __init__(self, client: RegistryClient, ref: ImageRef, platform: Platform) -> None:
        self.description = f"registry:{ref.familiar}"
        self.client = client
        self.ref = ref
        self.pinned: PinnedImage = client.resolve(ref, platform)

    def config_bytes(self) -> bytes:
        return self.pinned.config_bytes

    def config(self) -> ImageConfig:
        return self.pinned.config

    def manifest(self) -> Manifest | None:
        return self.pinned.manifest

    def manifest_digest(self) -> Digest | None:
        return self.pinned.manifest_digest

    def layers(self) -> Sequence[LayerRef]:
        return [
            LayerRef(index=i, digest=d.digest, size=d.size, media_type=d.media_type)
            for i, d in enumerate(self.pinned.manifest.layers)
        ]

    @contextlib.contextmanager
    def open_layer(self, layer: LayerRef) -> Iterator[IO[bytes]]:
        assert layer.digest is not None
        # never more than the descriptor's size: the client cuts a longer blob off early
        chunks = self.client.open_blob(self.ref, layer.digest, size=layer.size)
        stream = io.BufferedReader(ChunkStream(chunks), 1 << 20)
        try:
            yield stream
        finally:
            stream.close()
