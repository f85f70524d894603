"""Read one member of a remote zip (a wheel's METADATA) with a few range reads.

``fetch(start, end)`` returns bytes ``start..end-1`` of the file; the caller
starts us with the file's tail (fetched with a suffix range request) and its
total size.  The central directory is usually inside that tail, so a wheel's
METADATA costs two requests, however large the wheel.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable

Fetch = Callable[[int, int], bytes]


class _RangeFile(io.RawIOBase):
    """A seekable read-only file over ``fetch``, caching what it has read."""

    def __init__(self, size: int, fetch: Fetch, tail: bytes) -> None:
        self.size = size
        self.fetch = fetch
        self.blocks: list[tuple[int, bytes]] = [(size - len(tail), tail)]
        self.pos = 0
        self.requests = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def _cached(self, start: int, end: int) -> bytes | None:
        for block_start, data in self.blocks:
            if block_start <= start and end <= block_start + len(data):
                return data[start - block_start : end - block_start]
        return None

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        end = min(self.size, self.pos + len(buffer))
        if self.pos >= end:
            return 0
        data = self._cached(self.pos, end)
        if data is None:
            # Read ahead: zipfile reads a 30-byte local header, then the member.
            fetch_end = min(self.size, max(end, self.pos + 64 * 1024))
            block = self.fetch(self.pos, fetch_end)
            self.requests += 1
            self.blocks.append((self.pos, block))
            data = block[: end - self.pos]
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)


def read_member(
    size: int, tail: bytes, fetch: Fetch, wanted: Callable[[str], bool]
) -> bytes | None:
    """The first member whose name passes ``wanted``, or None when there is none."""
    with zipfile.ZipFile(io.BufferedReader(_RangeFile(size, fetch, tail), 64 * 1024)) as archive:
        for info in archive.infolist():
            if wanted(info.filename):
                return archive.read(info)
    return None


def is_metadata(member: str) -> bool:
    """True for a top-level ``*.dist-info/METADATA`` member."""
    folder, _, leaf = member.partition("/")
    return leaf == "METADATA" and folder.endswith(".dist-info")
