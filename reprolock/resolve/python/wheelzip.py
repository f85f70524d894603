"""Read one member of a remote zip (a wheel's METADATA) with a few range reads.

``fetch(start, end)`` returns bytes ``start..end-1`` of the file; the caller
starts us with the file's tail (fetched with a suffix range request) and its
total size.  The central directory is usually inside that tail, so a wheel's
METADATA costs one or two requests, however large the wheel.

The central directory is walked here with `struct` rather than `zipfile`: a wheel
such as torch's lists tens of thousands of members, and building a `zipfile.ZipInfo`
for each cost more than the network did.  The layout read is zipfile's (end record,
ZIP64 locator and record, data prepended to the archive, ZIP64 extra fields, UTF-8 or
cp437 names); anything inconsistent is a `ZipProblem`, and a member is inflated with
its output bounded and its CRC-32 checked.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from reprolock import limits

Fetch = Callable[[int, int], bytes]

_END = struct.Struct("<4s4H2LH")  # signature, disks, entries, directory size and offset
_END64_LOCATOR = struct.Struct("<4sLQL")
_END64 = struct.Struct("<4sQ2H2L4Q")
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
_LOCAL = struct.Struct("<4s2B4HL2L2H")
_END_SIGNATURE = b"PK\x05\x06"
_MAX_COMMENT = 0xFFFF
_READ_AHEAD = 64 * 1024
_STORED, _DEFLATED = 0, 8
_ENCRYPTED, _UTF8 = 0x1, 0x800


class ZipProblem(Exception):
    """The bytes are not a zip archive reprolock can read (the message says why)."""


class MemberTooLarge(Exception):
    """The wanted member is larger than ``limits.metadata_bytes``."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One member as the central directory lists it (offset: of its local header)."""

    name: str
    flags: int
    method: int
    crc: int
    compressed: int
    size: int
    offset: int


class _Remote:
    """The file's bytes by range, from the blocks already read or by ``fetch``."""

    def __init__(self, size: int, fetch: Fetch, tail: bytes) -> None:
        if len(tail) > size:
            raise ZipProblem(f"the tail has {len(tail)} bytes, the file {size}")
        self.size = size
        self.fetch = fetch
        self.blocks: list[tuple[int, bytes]] = [(size - len(tail), tail)]

    def read(self, start: int, end: int, *, ahead: int = 0) -> bytes:
        """Bytes ``start..end-1`` (fetching up to ``ahead`` bytes past ``end`` with them)."""
        if not 0 <= start <= end <= self.size:
            raise ZipProblem(f"bytes {start}-{end} lie outside the {self.size}-byte file")
        for block_start, data in self.blocks:
            if block_start <= start and end <= block_start + len(data):
                return data[start - block_start : end - block_start]
        stop = min(self.size, end + ahead)
        block = self.fetch(start, stop)
        if len(block) != stop - start:
            raise ZipProblem(f"asked for {stop - start} bytes, got {len(block)}")
        self.blocks.append((start, block))
        return block[: end - start]


def _end_record(window: bytes) -> int | None:
    """Where in ``window`` (the file's last bytes) its end record starts, if there."""
    at = len(window)
    while (at := window.rfind(_END_SIGNATURE, 0, at)) >= 0:
        if at + _END.size <= len(window):
            comment = _END.unpack_from(window, at)[7]
            if at + _END.size + comment <= len(window):
                return at
    return None


def _directory(remote: _Remote) -> tuple[bytes, int]:
    """The central directory's bytes and the length of data prepended to the archive."""
    # The end record is within the tail unless its comment is long: look there first.
    tail_start, tail = remote.blocks[0]
    at = _end_record(tail)
    if at is not None:
        window_start = tail_start
    else:
        window_start = max(0, remote.size - _END.size - _MAX_COMMENT)
        at = (
            _end_record(remote.read(window_start, remote.size))
            if window_start < tail_start
            else None
        )
        if at is None:
            raise ZipProblem("File is not a zip file")
    end_offset = window_start + at
    end = _END.unpack(remote.read(end_offset, end_offset + _END.size))
    directory_size, directory_offset = end[5], end[6]
    trailer = _END.size
    if end_offset >= _END64_LOCATOR.size:
        locator = _END64_LOCATOR.unpack(remote.read(end_offset - _END64_LOCATOR.size, end_offset))
        if locator[0] == b"PK\x06\x07":
            if locator[1] != 0 or locator[3] > 1:
                raise ZipProblem("zipfiles that span multiple disks are not supported")
            record_offset = end_offset - _END64_LOCATOR.size - _END64.size
            if record_offset < 0:
                raise ZipProblem("Truncated ZIP64 end of central directory")
            record = _END64.unpack(remote.read(record_offset, record_offset + _END64.size))
            if record[0] != b"PK\x06\x06":
                raise ZipProblem("Bad ZIP64 end of central directory record")
            directory_size, directory_offset = record[8], record[9]
            trailer += _END64_LOCATOR.size + _END64.size
    prepended = end_offset + _END.size - trailer - directory_size - directory_offset
    if prepended < 0:
        raise ZipProblem("Bad offset for central directory")
    bound = directory_cap()
    if directory_size > bound:
        raise ZipProblem(
            f"its central directory claims {directory_size} bytes, more than the {bound} "
            f"read for one ({limits.ENV_PREFIX}METADATA_BYTES × 4)"
        )
    start = directory_offset + prepended
    return remote.read(start, start + directory_size), prepended


def directory_cap() -> int:
    """The most bytes of central directory read for one wheel (also what range reads may
    fetch beyond its tail): four times the metadata limit, ~300,000 members' worth."""
    return limits.current().metadata_bytes * 4


def _zip64(extra: bytes, compressed: int, size: int, offset: int) -> tuple[int, int, int]:
    """The sizes and offset a ZIP64 extra field holds for those at their 32-bit maximum."""
    at = 0
    while at + 4 <= len(extra):
        kind, length = struct.unpack_from("<2H", extra, at)
        body = extra[at + 4 : at + 4 + length]
        if len(body) != length:
            raise ZipProblem("Corrupt extra field")
        if kind == 0x0001:
            fields = iter(struct.unpack_from(f"<{length // 8}Q", body))
            try:
                if size == 0xFFFFFFFF:
                    size = next(fields)
                if compressed == 0xFFFFFFFF:
                    compressed = next(fields)
                if offset == 0xFFFFFFFF:
                    offset = next(fields)
            except StopIteration:
                raise ZipProblem("Corrupt zip64 extra field") from None
            return compressed, size, offset
        at += 4 + length
    return compressed, size, offset


def _entries(remote: _Remote, suffix: bytes = b"") -> Iterator[Entry]:
    """The members the central directory lists, in its order; with ``suffix``, only those
    whose name ends with it (the others are skipped without decoding their names)."""
    directory, prepended = _directory(remote)
    at, end = 0, len(directory)
    unpack = _CENTRAL.unpack_from
    while at < end:
        if at + _CENTRAL.size > end:
            raise ZipProblem("Truncated central directory")
        header = unpack(directory, at)
        if header[0] != b"PK\x01\x02":
            raise ZipProblem("Bad magic number for central directory")
        name_at = at + _CENTRAL.size
        extra_at = name_at + header[12]
        at = extra_at + header[13] + header[14]
        if at > end:
            raise ZipProblem("Truncated central directory")
        raw = directory[name_at:extra_at]
        if suffix and not raw.endswith(suffix):
            continue
        flags = header[5]
        name = raw.decode("utf-8" if flags & _UTF8 else "cp437")
        if "\x00" in name:
            name = name[: name.index("\x00")]
        compressed, size, offset = header[10], header[11], header[18]
        if 0xFFFFFFFF in (compressed, size, offset):
            extra = directory[extra_at : extra_at + header[13]]
            compressed, size, offset = _zip64(extra, compressed, size, offset)
        yield Entry(name, flags, header[6], header[9], compressed, size, offset + prepended)


def _read(remote: _Remote, entry: Entry, cap: int) -> bytes:
    """The member's bytes, inflated within ``cap`` and checked against its CRC-32."""
    if entry.flags & _ENCRYPTED:
        raise ZipProblem(f"{entry.name} is encrypted")
    if entry.method not in (_STORED, _DEFLATED):
        # bzip2/lzma members would be inflated without an output bound
        raise ZipProblem(f"{entry.name} uses compression {entry.method}")
    if entry.size > cap or entry.compressed > cap + cap // 64 + 4096:
        raise MemberTooLarge
    header = _LOCAL.unpack(
        remote.read(entry.offset, entry.offset + _LOCAL.size, ahead=entry.compressed + _READ_AHEAD)
    )
    if header[0] != b"PK\x03\x04":
        raise ZipProblem("Bad magic number for file header")
    name_at = entry.offset + _LOCAL.size
    data_at = name_at + header[10] + header[11]
    local_name = remote.read(name_at, name_at + header[10])
    expected = entry.name.encode("utf-8" if entry.flags & _UTF8 else "cp437")
    if local_name[: len(expected)] != expected:
        raise ZipProblem(f"File name in directory {entry.name!r} and header differ")
    raw = remote.read(data_at, data_at + entry.compressed, ahead=0)
    if entry.method == _STORED:
        data = raw
    else:
        inflater = zlib.decompressobj(-15)
        data = inflater.decompress(raw, cap + 1)
        if len(data) > cap:
            raise MemberTooLarge
        if not inflater.eof:
            raise ZipProblem(f"{entry.name}: its compressed data end early")
    if len(data) != entry.size:
        raise ZipProblem(f"{entry.name}: {len(data)} bytes, the directory says {entry.size}")
    if zlib.crc32(data) != entry.crc:
        raise ZipProblem(f"Bad CRC-32 for file {entry.name!r}")
    return data


_PROBLEMS = (struct.error, UnicodeDecodeError, ValueError, OverflowError, zlib.error)


def read_member(
    size: int, tail: bytes, fetch: Fetch, wanted: Callable[[str], bool], *, suffix: bytes = b""
) -> bytes | None:
    """The first member whose name passes ``wanted``, or None when there is none (only
    names ending with ``suffix`` are decoded and asked about: a fast path for wheels
    with tens of thousands of members).

    The member is read through a bounded stream (``limits.metadata_bytes``, whatever
    its header claims): `MemberTooLarge` beyond it, `ZipProblem` for anything that is
    not a readable zip (``fetch`` may raise its own errors, which pass through).
    """
    cap = limits.current().metadata_bytes
    try:
        remote = _Remote(size, fetch, tail)
        for entry in _entries(remote, suffix):
            if wanted(entry.name):
                return _read(remote, entry, cap)
    except _PROBLEMS as exc:
        raise ZipProblem(str(exc)[:200] or type(exc).__name__) from None
    return None


def members(size: int, tail: bytes, fetch: Fetch) -> list[tuple[str, int, int, int, int]]:
    """Every member of a remote zip from its central directory: (name, offset of its local
    header, compressed size, size, compression method). `ZipProblem` when unreadable."""
    most = limits.current().archive_members
    found: list[tuple[str, int, int, int, int]] = []
    try:
        for e in _entries(_Remote(size, fetch, tail)):
            if len(found) == most:
                raise ZipProblem(
                    f"it lists more than {most} members ({limits.ENV_PREFIX}ARCHIVE_MEMBERS)"
                )
            found.append((e.name, e.offset, e.compressed, e.size, e.method))
    except _PROBLEMS as exc:
        raise ZipProblem(str(exc)[:200] or type(exc).__name__) from None
    return found


METADATA_SUFFIX = b"/METADATA"  # `read_member`'s suffix for `is_metadata` (the same in cp437)


def is_metadata(member: str) -> bool:
    """True for a top-level ``*.dist-info/METADATA`` member."""
    folder, _, leaf = member.partition("/")
    return leaf == "METADATA" and folder.endswith(".dist-info")
