"""A layer tree written as a deterministic tar, compressed with fixed headers.

The tar is written with `reprolock.image.tarwrite` (not `tarfile`, whose output changes
between Python releases): members sorted with each folder first, every header from the
tree alone (its mode, numeric owner without user or group names, and mtime), no extended
attributes, no device numbers.  Compression never writes a time or a host: gzip with a
fixed 10-byte header (no name, mtime 0, OS "unknown") over raw deflate at level 6, zstd
at level 3 without a content size, or none.  The digests are taken while writing: the
diff_id over the tar, the blob's digest over what is stored.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Literal

import zstandard

from reprolock.build.tree import Node, Store
from reprolock.image.tarwrite import END, Kind, header, padding
from reprolock.model.oci import OCI_LAYER_GZIP, OCI_LAYER_TAR, OCI_LAYER_ZSTD

Compression = Literal["gzip", "zstd", "none"]
MEDIA_TYPES: dict[Compression, str] = {
    "gzip": OCI_LAYER_GZIP,
    "zstd": OCI_LAYER_ZSTD,
    "none": OCI_LAYER_TAR,
}
GZIP_LEVEL = 6
ZSTD_LEVEL = 3
# magic, deflate, no flags, mtime 0, no extra flags, OS 255 ("unknown"): what Python's
# gzip module writes for level 6 without a name and with mtime 0, on every platform
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
_BUFFER = 1 << 20


@dataclass(frozen=True, slots=True, kw_only=True)
class Blob:
    """A layer as stored: its digest and size, and the diff_id of its tar."""

    digest: str  # "sha256:…" of the stored bytes
    size: int
    diff_id: str  # "sha256:…" of the uncompressed tar
    media_type: str


class _Compressor:
    """One compression of a byte stream; `finish` returns what is left."""

    def __init__(self, kind: Compression) -> None:
        self.kind = kind
        self._crc = 0
        self._length = 0
        self._deflate: zlib._Compress | None = None
        self._zstd: zstandard.ZstdCompressionObj | None = None
        if kind == "gzip":
            self._deflate = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS, 8)
        elif kind == "zstd":
            self._zstd = zstandard.ZstdCompressor(
                level=ZSTD_LEVEL, write_content_size=False, write_checksum=False, threads=0
            ).compressobj()

    def start(self) -> bytes:
        return _GZIP_HEADER if self.kind == "gzip" else b""

    def compress(self, data: bytes) -> bytes:
        if self._deflate is not None:
            self._crc = zlib.crc32(data, self._crc)
            self._length += len(data)
            return self._deflate.compress(data)
        if self._zstd is not None:
            return self._zstd.compress(data)
        return data

    def finish(self) -> bytes:
        if self._deflate is not None:
            tail = self._deflate.flush()
            return (
                tail
                + (self._crc & 0xFFFFFFFF).to_bytes(4, "little")
                + (self._length & 0xFFFFFFFF).to_bytes(4, "little")
            )
        if self._zstd is not None:
            return self._zstd.flush()
        return b""


class LayerWriter:
    """A file-like sink for a tar: hashes it (diff_id), compresses it, hashes and writes
    what is stored to ``out``."""

    def __init__(self, out: IO[bytes], compression: Compression) -> None:
        self.out = out
        self.compression = compression
        self._compressor = _Compressor(compression)
        self._diff = hashlib.sha256()
        self._blob = hashlib.sha256()
        self._stored = 0
        self._position = 0
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._store(self._compressor.start())

    def _store(self, data: bytes) -> None:
        if data:
            self._blob.update(data)
            self._stored += len(data)
            self.out.write(data)

    def write(self, data: bytes) -> int:
        self._pending.append(bytes(data))
        self._pending_size += len(data)
        self._position += len(data)
        if self._pending_size >= _BUFFER:
            self._flush()
        return len(data)

    def tell(self) -> int:
        return self._position

    def _flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending, self._pending_size = [], 0
        self._diff.update(data)
        self._store(self._compressor.compress(data))

    def close(self) -> Blob:
        self._flush()
        self._store(self._compressor.finish())
        self.out.flush()
        diff_id = "sha256:" + self._diff.hexdigest()
        return Blob(
            digest="sha256:" + self._blob.hexdigest() if self.compression != "none" else diff_id,
            size=self._stored,
            diff_id=diff_id,
            media_type=MEDIA_TYPES[self.compression],
        )


def _headers(node: Node) -> bytes:
    """The header blocks of ``node`` (a whiteout is the empty file ``.wh.<name>``)."""
    path = node.path
    kind: Kind
    if node.kind == "whiteout":
        folder, _, leaf = path.rpartition("/")
        path, kind = (f"{folder}/.wh.{leaf}" if folder else f".wh.{leaf}"), "file"
    else:
        kind = node.kind
    return header(
        path,
        kind,
        mode=node.mode,
        uid=node.uid,
        gid=node.gid,
        size=node.content.size if node.kind == "file" and node.content is not None else 0,
        mtime=node.mtime,
        link=node.link if node.kind in ("symlink", "hardlink") else "",
    )


def write_layer(
    nodes: Sequence[Node], store: Store, out: IO[bytes], compression: Compression
) -> Blob:
    """``nodes`` (in tar order: `reprolock.build.tree.Tree.nodes`) as a layer into ``out``."""
    sink = LayerWriter(out, compression)
    for node in nodes:
        sink.write(_headers(node))
        if node.kind == "file" and node.content is not None and node.content.size:
            with store.open(node.content) as data:
                while chunk := data.read(_BUFFER):
                    sink.write(chunk)
            sink.write(padding(node.content.size))
    sink.write(END)
    return sink.close()
