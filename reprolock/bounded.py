"""Bounded reads: capped byte counts and output-bounded decompression.

Every archive and network read goes through here (or through `reprolock.net.http`,
which uses the same caps), so a hostile input costs at most what `reprolock.limits`
allows: a read stops one byte past its cap, and a decompressor never produces more
than one small step of output before the totals and the ratio are checked again.
"""

from __future__ import annotations

import bz2
import functools
import io
import lzma
import zlib
from collections.abc import Callable
from typing import IO, Literal, Protocol, cast

import zstandard

from reprolock import limits
from reprolock.errors import SourceError

Compression = Literal["gzip", "xz", "zstd", "bzip2", "plain"]

STEP = 1 << 20  # the most output one decompression call may produce
INPUT_CHUNK = 1 << 20  # compressed bytes read at a time: fewer, larger reads leave the walk
# more of the interpreter lock (gzip OCI inspect 10.7 -> 10.4 s on 2 cores; alone, as fast)

# gzip is inflated by ISA-L (python-isal) where it is installed, several times faster than
# zlib on x86-64 (a multi-GB pip layer is the floor of reading an image); zlib otherwise.
# ISA-L's inflate is used through its bz2-like decompressor, which takes the interpreter lock
# back once per call where the zlib-like one takes it back for every block of output it grows
# (~7 times a 1 MiB call: a thread running Python beside it made it 5-25 times slower).
_INFLATE_ERRORS: tuple[type[Exception], ...] = (zlib.error,)
_ISAL_GZIP: Callable[[], _StreamDecoder] | None = None
try:
    from isal import igzip_lib  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - depends on what is installed
    pass
else:  # pragma: no cover - depends on what is installed
    # isal's stubs type its error as an instance; it is the exception class
    _INFLATE_ERRORS = (zlib.error, cast("type[Exception]", igzip_lib.IsalError))
    # DECOMP_GZIP checks the header and the trailer's CRC-32 and size, as zlib does
    _ISAL_GZIP = functools.partial(igzip_lib.IgzipDecompressor, flag=igzip_lib.DECOMP_GZIP)


_CORRUPT: tuple[type[Exception], ...] = (
    *_INFLATE_ERRORS,
    lzma.LZMAError,
    zstandard.ZstdError,
    EOFError,
    OSError,
)


def read_capped(stream: IO[bytes] | io.RawIOBase, cap: int, what: str, limit_name: str) -> bytes:
    """All of ``stream``, or `SourceError` as soon as it passes ``cap`` bytes."""
    parts: list[bytes] = []
    total = 0
    while True:
        chunk = stream.read(min(STEP, cap + 1 - total))
        if not chunk:
            return b"".join(parts)
        total += len(chunk)
        if total > cap:
            raise limits.exceeded(what, limit_name, actual=f"over {total} bytes")
        parts.append(chunk)


def sniff(head: bytes) -> Compression:
    """The compression of a stream from its first bytes (6 are enough)."""
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return "zstd"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if head[:3] == b"BZh":
        return "bzip2"
    return "plain"


class Replay:
    """``head`` (already read to sniff the compression), then the rest of ``raw``."""

    def __init__(self, head: bytes, raw: IO[bytes]) -> None:
        self.head = head
        self.raw = raw

    def read(self, size: int = -1) -> bytes:
        if self.head:
            out, self.head = self.head, b""
            return out
        return self.raw.read(size)


class _Counting(io.RawIOBase):
    """Counts (and reports) the compressed bytes a decompressor pulls."""

    def __init__(self, raw: IO[bytes], on_input: Callable[[bytes], None] | None) -> None:
        self.raw = raw
        self.on_input = on_input
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(INPUT_CHUNK if size is None or size < 0 else size)
        self.count += len(data)
        if data and self.on_input is not None:
            self.on_input(data)
        return data

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class Decompressor(io.RawIOBase):
    """A readable stream of ``raw`` decompressed, bounded in output and in ratio.

    ``max_output`` caps the total output (``limit_name`` names the cap in the error);
    beyond ``floor`` bytes, output more than ``ratio`` times the input is a bomb.
    ``on_input`` sees every compressed byte read (to hash the stored blob).  Each
    ``read(n)`` returns at most ``n`` bytes and decompresses at most `STEP` at once.
    Raises `SourceError` for corrupt or truncated data and for bombs.
    """

    def __init__(
        self,
        raw: IO[bytes],
        kind: Compression,
        *,
        what: str,
        max_output: int,
        limit_name: str,
        ratio: int | None = None,
        floor: int | None = None,
        on_input: Callable[[bytes], None] | None = None,
    ) -> None:
        caps = limits.current()
        self.kind = kind
        self.what = what
        self.max_output = max_output
        self.limit_name = limit_name
        self.ratio = caps.decompression_ratio if ratio is None else ratio
        self.floor = caps.decompression_floor if floor is None else floor
        self.input = _Counting(raw, on_input)
        self.uncompressed = 0
        self._eof = False
        self._zlib: zlib._Decompress | None = None
        self._stream: _StreamDecoder | None = None  # xz, bzip2 or ISA-L's gzip: one API
        self._pending = b""  # compressed input not yet given to the decompressor
        self._zstd: zstandard.ZstdDecompressionReader | None = None
        if kind == "gzip" and _ISAL_GZIP is None:
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif kind in ("xz", "bzip2", "gzip"):
            self._stream = _new_stream_decoder(kind)
        elif kind == "zstd":
            self._zstd = zstandard.ZstdDecompressor(
                max_window_size=caps.decoder_memory_bytes
            ).stream_reader(
                self.input,  # type: ignore[arg-type]
                read_size=INPUT_CHUNK,
                read_across_frames=True,
            )

    @property
    def compressed(self) -> int:
        return self.input.count

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        if self._eof:
            return b""
        want = STEP if size is None or size < 0 else min(size, STEP)
        if want == 0:
            return b""
        try:
            out = self._next(want)
        except _CORRUPT as exc:
            raise SourceError(
                f"{self.what}: corrupt compressed data ({exc}).",
                hint="The file is damaged or hostile; do not use it.",
            ) from None
        if not out:
            self._eof = True
            return b""
        self._account(len(out))
        return out

    def _account(self, produced: int) -> None:
        self.uncompressed += produced
        if self.uncompressed > self.max_output:
            raise limits.exceeded(
                f"{self.what} (decompressed)",
                self.limit_name,
                actual=f"over {self.uncompressed} bytes",
            )
        if self.uncompressed > self.floor and self.uncompressed > self.ratio * max(
            self.compressed, 1
        ):
            raise SourceError(
                f"{self.what}: expands to over {self.uncompressed >> 20} MiB from "
                f"{self.compressed >> 10} KiB: refusing a decompression bomb.",
                hint="This is not genuine data; do not use it. (Ratios above "
                f"{self.ratio}:1 past {self.floor >> 20} MiB are refused: "
                f"{limits.ENV_PREFIX}DECOMPRESSION_RATIO.)",
            )

    def _next(self, want: int) -> bytes:
        if self._zstd is not None:
            return self._zstd.read(want)
        if self._zlib is not None:
            return self._inflate(want)
        if self._stream is not None:
            return self._unstream(want)
        return self.input.read(want)

    def _inflate(self, want: int) -> bytes:
        z = self._zlib
        assert z is not None
        while True:
            data = z.unconsumed_tail or self._pending
            self._pending = b""
            if not data:
                data = self.input.read(INPUT_CHUNK)
                if not data:
                    if not z.eof:
                        raise EOFError("the compressed stream is truncated")
                    return b""
            out = z.decompress(data, want)
            if z.eof and z.unused_data:  # concatenated gzip members (pigz, some registries)
                self._pending = z.unused_data
                z = self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
            if out:
                return out

    def _unstream(self, want: int) -> bytes:
        """xz, bzip2 or gzip (ISA-L), ``want`` bytes at most; concatenated streams (pbzip2,
        multi-stream xz, pigz's gzip members) are read one after the other."""
        decoder = self._stream
        assert decoder is not None
        while True:
            if decoder.eof:
                rest = decoder.unused_data or self.input.read(INPUT_CHUNK)
                if not rest:
                    return b""
                self._pending = rest
                decoder = self._stream = _new_stream_decoder(self.kind)
            if decoder.needs_input:
                data = self._pending or self.input.read(INPUT_CHUNK)
                self._pending = b""
                if not data:
                    raise EOFError("the compressed stream is truncated")
            else:
                data = b""
            out = decoder.decompress(data, want)
            if out:
                return out


class _StreamDecoder(Protocol):
    """What `lzma.LZMADecompressor` and `bz2.BZ2Decompressor` share."""

    @property
    def eof(self) -> bool: ...

    @property
    def needs_input(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...

    def decompress(self, data: bytes, max_length: int = -1) -> bytes: ...


def _new_stream_decoder(kind: Compression) -> _StreamDecoder:
    if kind == "xz":
        return lzma.LZMADecompressor(memlimit=limits.current().decoder_memory_bytes)
    if kind == "gzip" and _ISAL_GZIP is not None:
        return _ISAL_GZIP()
    if kind == "bzip2":
        return bz2.BZ2Decompressor()
    raise ValueError(f"no stream decoder for {kind}")  # a bug: gzip without ISA-L is zlib's


def decompress_capped(
    data: bytes,
    kind: Compression,
    *,
    what: str,
    max_output: int,
    limit_name: str,
    floor: int | None = None,
) -> bytes:
    """``data`` decompressed whole, within the same bounds as `Decompressor`."""
    stream = Decompressor(
        io.BytesIO(data),
        kind,
        what=what,
        max_output=max_output,
        limit_name=limit_name,
        floor=floor,
    )
    return read_capped(stream, max_output, what, limit_name)
