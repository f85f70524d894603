"""How far a read of an image has come: an `Image` whose layer streams are counted.

`Counted` wraps any source; its `ReadCounts` say how many layers were opened and finished
and how many stored bytes were read, out of how many when the source knows the sizes (a
registry or an OCI layout does; a docker archive's layers may not say). A progress line
polls them from another thread.
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Iterator, Sequence
from typing import IO, cast

from reprolock.image.source import Image, LayerRef
from reprolock.model import Digest
from reprolock.model.oci import ImageConfig, Manifest


class ReadCounts:
    """Counters shared by the threads that read an image's layers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.layers = 0  # layers of the image (0 until they are listed)
        self.done = 0  # layers read to the end
        self.bytes = 0  # stored bytes read so far (what a download or a disk read costs)
        self.total = 0  # stored bytes of every layer, when the source records each size
        self.spooled = 0  # bytes copied from a daemon before the layers can be read

    def add(self, size: int) -> None:
        with self._lock:
            self.bytes += size

    def spool(self, size: int) -> None:
        with self._lock:
            self.spooled += size

    def finish(self) -> None:
        with self._lock:
            self.done += 1

    def stats(self) -> dict[str, int]:
        """A snapshot: ``layers``, ``layers-done``, ``bytes``, ``bytes-total`` (when known)
        and ``spooled`` (when a daemon's image is copied first)."""
        with self._lock:
            out = {"layers": self.layers, "layers-done": self.done, "bytes": self.bytes}
            if self.total:
                out["bytes-total"] = self.total
            if self.spooled:
                out["spooled"] = self.spooled
            return out


class _Counting(io.RawIOBase):
    """A layer stream that adds what is read from it to ``counts``."""

    def __init__(self, raw: IO[bytes], counts: ReadCounts) -> None:
        super().__init__()
        self._raw = raw
        self._counts = counts

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._counts.add(len(data))
        return data

    def readable(self) -> bool:
        return True


class Counted:
    """``image``, with every layer read counted in ``counts``."""

    def __init__(self, image: Image, counts: ReadCounts) -> None:
        self.image = image
        self.counts = counts
        self.description = image.description

    def config_bytes(self) -> bytes:
        return self.image.config_bytes()

    def config(self) -> ImageConfig:
        return self.image.config()

    def manifest(self) -> Manifest | None:
        return self.image.manifest()

    def manifest_digest(self) -> Digest | None:
        return self.image.manifest_digest()

    def layers(self) -> Sequence[LayerRef]:
        layers = self.image.layers()
        sizes = [layer.size for layer in layers]
        self.counts.layers = len(layers)
        self.counts.total = sum(s for s in sizes if s) if all(s for s in sizes) else 0
        return layers

    @contextlib.contextmanager
    def open_layer(self, layer: LayerRef) -> Iterator[IO[bytes]]:
        with self.image.open_layer(layer) as stream:
            yield cast(IO[bytes], _Counting(stream, self.counts))
        self.counts.finish()
