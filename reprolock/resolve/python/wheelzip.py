"""Read one member of a remote zip (a wheel's METADATA) with a few range reads.

``fetch(start, end)`` returns bytes ``start..end-1`` of the file; the caller
starts us with the file's tail (fetched with a suffix range request) and its
total size.  The central directory is usually inside that tail, so a wheel's
METADATA costs two requests, however large the wheel.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable

from reprolock import limits

Fetch = Callable[[int, int], bytes]


class ZipProblem(Exception):
    """The bytes are not a zip archive reprolock can read (the message says why)."""


class MemberTooLarge(Exception):
    """The wanted member is larger than ``limits.metadata_bytes``."""


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
            if len(block) != fetch_end - self.pos:
                raise ZipProblem(f"asked for {fetch_end - self.pos} bytes, got {len(block)}")
            self.requests += 1
            self.blocks.append((self.pos, block))
            data = block[: end - self.pos]
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)


def read_member(
    size: int, tail: bytes, fetch: Fetch, wanted: Callable[[str], bool]
) -> bytes | None:
    """The first member whose name passes ``wanted``, or None when there is none.

    The member is read through a bounded stream (``limits.metadata_bytes``, whatever
    its header claims): `MemberTooLarge` beyond it, `ZipProblem` for anything that is
    not a readable zip (``fetch`` may raise its own errors, which pass through).
    """
    cap = limits.current().metadata_bytes
    try:
        with zipfile.ZipFile(
            io.BufferedReader(_RangeFile(size, fetch, tail), 64 * 1024)
        ) as archive:
            for info in archive.infolist():
                if wanted(info.filename):
                    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                        # bzip2/lzma members are inflated without an output bound by zipfile
                        raise ZipProblem(f"{info.filename} uses compression {info.compress_type}")
                    with archive.open(info) as member:
                        data = member.read(cap + 1)
                    if len(data) > cap:
                        raise MemberTooLarge
                    return data
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        zlib.error,
        struct.error,
        EOFError,
        ValueError,
        OverflowError,
        NotImplementedError,
        RuntimeError,  # encrypted members
        UnicodeDecodeError,
        OSError,
    ) as exc:
        raise ZipProblem(str(exc)[:200] or type(exc).__name__) from None
    return None


def members(size: int, tail: bytes, fetch: Fetch) -> list[tuple[str, int, int, int, int]]:
    """Every member of a remote zip from its central directory: (name, offset of its local
    header, compressed size, size, compression method). `ZipProblem` when unreadable."""
    try:
        with zipfile.ZipFile(
            io.BufferedReader(_RangeFile(size, fetch, tail), 64 * 1024)
        ) as archive:
            return [
                (i.filename, i.header_offset, i.compress_size, i.file_size, i.compress_type)
                for i in archive.infolist()
            ]
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        struct.error,
        EOFError,
        ValueError,
        OverflowError,
        UnicodeDecodeError,
        OSError,
    ) as exc:
        raise ZipProblem(str(exc)[:200] or type(exc).__name__) from None


def is_metadata(member: str) -> bool:
    """True for a top-level ``*.dist-info/METADATA`` member."""
    folder, _, leaf = member.partition("/")
    return leaf == "METADATA" and folder.endswith(".dist-info")
