"""One streaming pass over a layer: decompress, walk the tar, keep what catalogers need.

A layer is read once, start to end; nothing is extracted to disk.  Files the
catalogers parse are kept in memory (they are small), files under Python
package folders are hashed (for RECORD checks), and every path is recorded with
its type, size and link target so the layers can be merged afterwards.
Hostile input is refused with `SourceError`: unsafe paths, absurd sizes,
decompression bombs, truncated or corrupt archives.
"""

from __future__ import annotations

import base64
import hashlib
import posixpath
import queue
import tarfile
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Literal

import zstandard

from reprolock.errors import SourceError

Kind = Literal["file", "dir", "symlink", "hardlink", "other"]

MAX_MEMBER = 64 << 30  # no single file in a real image is larger
MAX_LAYER = 256 << 30
BOMB_RATIO = 200  # uncompressed/compressed beyond this (and > 256 MiB) is a bomb
BOMB_FLOOR = 256 << 20
CHUNK = 1 << 20
# tarfile's stream buffer: its small reads copy the buffer's remainder, its skips read
# through in buffer-sized steps; 64 KiB measured fastest on a 6 GB layer (8.8 s against
# 11.8 s for its 10 KiB default and 12.3 s for 1 MiB).
TAR_BUFFER = 64 * 1024

WantContent = Callable[[str], bool]
"""Which paths' bytes to keep (catalogers' inputs)."""
WantHash = Callable[[str], bool]
"""Which paths to hash with sha256 (for RECORD integrity)."""


@dataclass(slots=True)
class Entry:
    """One path as a layer writes it."""

    path: str  # normalized, relative to the image root, no leading "/"
    kind: Kind
    size: int = 0
    mode: int = 0
    link: str | None = None  # symlink target as written, or hard link source path
    content: bytes | None = None
    sha256: str | None = None  # urlsafe-base64 digest, as RECORD writes it


@dataclass(slots=True)
class LayerScan:
    """What one layer adds, changes and deletes."""

    index: int
    entries: list[Entry] = field(default_factory=list)
    whiteouts: list[str] = field(default_factory=list)  # paths deleted from lower layers
    opaque: list[str] = field(default_factory=list)  # dirs whose lower contents are hidden
    compressed_size: int = 0
    uncompressed_size: int = 0
    diff_id: str = ""  # sha256 of the uncompressed tar
    blob_digest: str = ""  # sha256 of the stored (possibly compressed) bytes


class _BackgroundHash:
    """sha256 on another thread: hashlib releases the GIL on large buffers, so hashing the
    layer for its diff_id runs beside the tar walk instead of after each read."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=16)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            self._hash.update(data)

    def update(self, data: bytes) -> None:
        if data:
            self._queue.put(data)

    def hexdigest(self) -> str:
        self.close()
        return self._hash.hexdigest()

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


class _FileHashes:
    """Hashes files' contents on a worker thread while the tar walk goes on, and sets
    each entry's RECORD-style sha256 when its last chunk is hashed."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[Entry, bytes | None] | None] = queue.Queue(maxsize=64)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        hashers: dict[int, Any] = {}
        while (item := self._queue.get()) is not None:
            entry, data = item
            hasher = hashers.setdefault(id(entry), hashlib.sha256())
            if data is None:
                digest = hashers.pop(id(entry)).digest()
                entry.sha256 = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            else:
                hasher.update(data)

    def update(self, entry: Entry, data: bytes) -> None:
        self._queue.put((entry, data))

    def finish(self, entry: Entry) -> None:
        self._queue.put((entry, None))

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


class _CountingReader:
    """Decompresses a raw stream, counting bytes both sides and hashing the output."""

    def __init__(self, raw: IO[bytes], what: str) -> None:
        self.raw = raw
        self.what = what
        self.compressed = 0
        self.uncompressed = 0
        self.hasher = _BackgroundHash()  # of the uncompressed tar: the diff_id
        head = raw.read(6)
        self.compressed += len(head)
        self._pending = b""
        self._offset = 0
        self._eof = False
        self._decompress: Callable[[bytes], bytes] | None
        if head[:2] == b"\x1f\x8b":
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
            self._decompress = self._gunzip
        elif head[:4] == b"\x28\xb5\x2f\xfd":
            self._zstd = zstandard.ZstdDecompressor().decompressobj()
            self._decompress = self._zstd.decompress
        else:
            self._decompress = None
        # The stored bytes' digest (the blob digest) differs from the diff_id only when
        # the layer is compressed: hash them separately only then.
        self.raw_hasher = _BackgroundHash() if self._decompress is not None else None
        if self.raw_hasher is not None:
            self.raw_hasher.update(head)
        self._pending = self._feed(head)

    def _gunzip(self, data: bytes) -> bytes:
        out = self._zlib.decompress(data)
        # concatenated gzip members (pigz, some registries)
        while self._zlib.eof and self._zlib.unused_data:
            rest = self._zlib.unused_data
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out += self._zlib.decompress(rest)
        return out

    def _feed(self, data: bytes) -> bytes:
        try:
            out = self._decompress(data) if self._decompress else data
        except (zlib.error, zstandard.ZstdError) as exc:
            raise SourceError(
                f"{self.what}: corrupt compressed data ({exc}).",
                hint="The image is damaged; rebuild or re-pull it.",
            ) from None
        self.uncompressed += len(out)
        if self.uncompressed > MAX_LAYER or (
            self.uncompressed > BOMB_FLOOR
            and self.uncompressed > BOMB_RATIO * max(self.compressed, 1)
        ):
            raise SourceError(
                f"{self.what}: expands to over {self.uncompressed >> 20} MiB from "
                f"{self.compressed >> 10} KiB: refusing a decompression bomb.",
                hint="This is not a real image layer; do not use the image.",
            )
        self.hasher.update(out)
        return out

    def read(self, size: int = -1) -> bytes:
        # tarfile reads in small pieces: serve them from the current chunk by offset
        # (slicing the remainder off each time would copy the chunk over and over).
        available = len(self._pending) - self._offset
        while not self._eof and (size < 0 or available < size):
            data = self.raw.read(CHUNK)
            if not data:
                self._eof = True
                if self._decompress is self._gunzip and not self._zlib.eof:
                    raise SourceError(
                        f"{self.what}: the compressed stream is truncated.",
                        hint="The image is damaged; rebuild or re-pull it.",
                    )
                break
            self.compressed += len(data)
            if self.raw_hasher is not None:
                self.raw_hasher.update(data)
            self._pending = self._pending[self._offset :] + self._feed(data)
            self._offset = 0
            available = len(self._pending)
        if size < 0 or size >= available:
            out = self._pending[self._offset :]
            self._pending, self._offset = b"", 0
            return out
        out = self._pending[self._offset : self._offset + size]
        self._offset += size
        return out


def safe_path(name: str, what: str) -> str:
    """The member name relative to the image root; `SourceError` for escaping paths."""
    path = name.lstrip("/")
    while path.startswith("./"):
        path = path[2:]
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise SourceError(
            f'{what}: the path "{name}" climbs out of the image root.',
            hint="This layer is hostile or broken; do not use the image.",
        )
    return "/".join(parts)


def _members(tar: tarfile.TarFile, what: str) -> Iterator[tarfile.TarInfo]:
    while True:
        try:
            member = tar.next()
        except (tarfile.ReadError, EOFError, OSError) as exc:
            raise SourceError(
                f"{what}: the tar stream is corrupt or truncated ({exc}).",
                hint="The image is damaged; rebuild or re-pull it.",
            ) from None
        if member is None:
            return
        yield member


def scan_layer(
    raw: IO[bytes], index: int, *, what: str, want_content: WantContent, want_hash: WantHash
) -> LayerScan:
    """Read one layer (gzip, zstd or plain tar) from ``raw`` in a single pass."""
    reader = _CountingReader(raw, what)
    try:
        return _scan(reader, index, what=what, want_content=want_content, want_hash=want_hash)
    finally:
        reader.hasher.close()
        if reader.raw_hasher is not None:
            reader.raw_hasher.close()


def _scan(
    reader: _CountingReader,
    index: int,
    *,
    what: str,
    want_content: WantContent,
    want_hash: WantHash,
) -> LayerScan:
    file_hashes = _FileHashes()
    links: list[tuple[Entry, Entry]] = []
    try:
        scan = _walk(
            reader,
            index,
            what=what,
            want_content=want_content,
            want_hash=want_hash,
            file_hashes=file_hashes,
            links=links,
        )
    finally:
        file_hashes.close()
    for entry, original in links:
        entry.sha256 = original.sha256
    return scan


def _walk(
    reader: _CountingReader,
    index: int,
    *,
    what: str,
    want_content: WantContent,
    want_hash: WantHash,
    file_hashes: _FileHashes,
    links: list[tuple[Entry, Entry]],
) -> LayerScan:
    scan = LayerScan(index=index)
    try:
        tar = tarfile.open(fileobj=reader, mode="r|", bufsize=TAR_BUFFER)  # type: ignore[call-overload]  # noqa: SIM115
    except (tarfile.ReadError, EOFError) as exc:
        raise SourceError(
            f"{what}: is not a tar archive ({exc}).",
            hint="The image is damaged; rebuild or re-pull it.",
        ) from None
    seen: dict[str, Entry] = {}
    for member in _members(tar, what):
        path = safe_path(member.name, what)
        if not path:
            continue
        folder, leaf = posixpath.split(path)
        if leaf == ".wh..wh..opq":
            scan.opaque.append(folder)
            continue
        if leaf.startswith(".wh."):
            scan.whiteouts.append(posixpath.join(folder, leaf[4:]))
            continue
        if member.size > MAX_MEMBER:
            raise SourceError(
                f"{what}: {path} claims {member.size} bytes: refusing.",
                hint="This layer is hostile or broken; do not use the image.",
            )
        entry = Entry(path=path, kind="other", size=member.size, mode=member.mode)
        if member.isreg():
            entry.kind = "file"
            keep, digest = want_content(path), want_hash(path)
            if keep or digest:
                handle = tar.extractfile(member)
                assert handle is not None
                parts: list[bytes] = []
                try:
                    while chunk := handle.read(CHUNK):
                        if digest:
                            file_hashes.update(entry, chunk)
                        if keep:
                            parts.append(chunk)
                    if digest:
                        file_hashes.finish(entry)
                except (tarfile.ReadError, EOFError, OSError) as exc:
                    raise SourceError(
                        f"{what}: {path} is truncated ({exc}).",
                        hint="The image is damaged; rebuild or re-pull it.",
                    ) from None
                if keep:
                    entry.content = b"".join(parts)
        elif member.isdir():
            entry.kind = "dir"
        elif member.issym():
            entry.kind = "symlink"
            entry.link = member.linkname
        elif member.islnk():
            source = safe_path(member.linkname, what)
            original = seen.get(source)
            entry.kind = "hardlink"
            entry.link = source
            if original is not None and original.kind == "file":
                entry.kind = "file"
                entry.size = original.size
                entry.content = original.content if want_content(path) else None
                links.append((entry, original))  # its hash may still be in the works
        seen[path] = entry
        scan.entries.append(entry)
    # Drain whatever follows the end-of-archive marker, so the digest covers the whole tar.
    while reader.read(CHUNK):
        pass
    scan.compressed_size = reader.compressed
    scan.uncompressed_size = reader.uncompressed
    scan.diff_id = "sha256:" + reader.hasher.hexdigest()
    scan.blob_digest = (
        scan.diff_id if reader.raw_hasher is None else "sha256:" + reader.raw_hasher.hexdigest()
    )
    return scan
