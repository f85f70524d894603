"""The CUDA kernels of a wheel, measured from its bytes in one pass.

The wheel's central directory (read first, with a range request) says where each member
starts and how it is stored; the file is then read once front to back — hashed whole, so
the measurement is of the exact file the index lists — and every shared object
(``*.so``, ``*.so.N``) is inflated as it passes, bounded by its declared size, into a
`FatbinScanner`. Nothing else is kept: memory is one decompression step and one entry
header, however large the wheel.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass, field

from reprolock import limits
from reprolock.compat.fatbin import FatbinScanner, Kernels
from reprolock.errors import SourceError

_SHARED_OBJECT = re.compile(r"\.so(\.\d+)*$")
_LOCAL = struct.Struct("<IHHHHHIIIHH")
_LOCAL_MAGIC = 0x04034B50
STORED, DEFLATED = 0, 8
STEP = 1 << 20


@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    """One member of the zip, as its central directory describes it."""

    name: str
    offset: int  # of its local file header
    compressed_size: int
    size: int
    method: int


def is_shared_object(name: str) -> bool:
    return bool(_SHARED_OBJECT.search(name)) and not name.endswith("/")


@dataclass(slots=True)
class _Open:
    member: Member
    header: bytearray = field(default_factory=bytearray)
    data_left: int = -1  # compressed bytes still to come (-1: local header not read yet)
    inflater: zlib._Decompress | None = None
    produced: int = 0
    scanner: FatbinScanner = field(default_factory=FatbinScanner)


@dataclass(slots=True)
class WheelKernels:
    """Feed the wheel's bytes in order; `finish` gives the kernels of each shared object."""

    what: str
    members: list[Member]
    _position: int = 0
    _queue: list[Member] = field(init=False)
    _current: _Open | None = None
    _found: dict[str, Kernels] = field(default_factory=dict)

    def __post_init__(self) -> None:
        wanted = [
            m for m in self.members if is_shared_object(m.name) and m.method in (STORED, DEFLATED)
        ]
        self._queue = sorted(wanted, key=lambda m: m.offset, reverse=True)

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            current = self._current
            if current is None:
                if not self._queue:
                    self._position += len(view)
                    return
                nxt = self._queue[-1]
                gap = nxt.offset - self._position
                if gap > 0:
                    step = min(gap, len(view))
                    view = view[step:]
                    self._position += step
                    continue
                if gap < 0:  # overlapping members: not a zip written by a wheel tool
                    raise SourceError(
                        f"{self.what}: its zip members overlap ({nxt.name}).",
                        hint="The wheel is damaged or hostile; do not use it.",
                    )
                self._queue.pop()
                current = self._current = _Open(nxt)
            used = self._advance(current, view)
            view = view[used:]
            self._position += used

    def _advance(self, current: _Open, view: memoryview) -> int:
        """Consume bytes of the current member; returns how many were used."""
        if current.data_left < 0:
            need = _LOCAL.size - len(current.header)
            if need > 0:
                take = min(need, len(view))
                current.header += view[:take]
                return take
            fields = _LOCAL.unpack_from(current.header, 0)
            if fields[0] != _LOCAL_MAGIC:
                raise SourceError(
                    f"{self.what}: no local header where its central directory puts "
                    f"{current.member.name}.",
                    hint="The wheel is damaged or hostile; do not use it.",
                )
            extra = int(fields[9]) + int(fields[10])
            have = len(current.header) - _LOCAL.size
            if have < extra:
                take = min(extra - have, len(view))
                current.header += view[:take]
                return take
            current.data_left = current.member.compressed_size
            if current.member.method == DEFLATED:
                current.inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            if current.data_left == 0:
                self._close(current)
            return 0
        take = min(current.data_left, len(view))
        chunk = view[:take]
        current.data_left -= take
        if current.inflater is None:
            self._out(current, chunk)
        else:
            try:
                data: bytes | memoryview = chunk
                while data:
                    out = current.inflater.decompress(data, STEP)
                    self._out(current, out)
                    data = current.inflater.unconsumed_tail
            except zlib.error as exc:
                raise SourceError(
                    f"{self.what}: {current.member.name} is not valid deflate data ({exc}).",
                    hint="The wheel is damaged or hostile; do not use it.",
                ) from None
        if current.data_left == 0:
            self._close(current)
        return take

    def _out(self, current: _Open, data: bytes | memoryview) -> None:
        current.produced += len(data)
        if current.produced > current.member.size:
            raise limits.exceeded(
                f"{self.what}: {current.member.name}",
                f"the size its central directory gives ({current.member.size} bytes)",
            )
        current.scanner.feed(data)

    def _close(self, current: _Open) -> None:
        kernels = current.scanner.finish()
        if not kernels.empty:
            self._found[current.member.name] = kernels
        self._current = None

    def finish(self) -> dict[str, Kernels]:
        """Kernels per shared object that has any (by member name, sorted)."""
        if self._current is not None or self._queue:
            missing = self._current.member.name if self._current else self._queue[-1].name
            raise SourceError(
                f"{self.what}: the file ended before {missing} did.",
                hint="The download was cut short; retry.",
            )
        return dict(sorted(self._found.items()))


_VENDOR_WORDS = re.compile(r"nvidia|cuda|cu\d+")


def primary(per_library: dict[str, Kernels], package: str = "") -> tuple[str, Kernels] | None:
    """The library a table row describes: among those named after the package (``torch``
    → ``libtorch_cuda.so``; vendored libraries such as cuSPARSELt are not the framework;
    for NVIDIA's wheels the word that is not ``nvidia``, ``cuda`` or ``cuXY``:
    ``nvidia-cuda-cupti-cu12`` → ``libcupti.so``, not its ``libcheckpoint.so``), else among
    all, the one carrying the most fatbin containers. Ties go to the first name."""
    if not per_library:
        return None

    def named(word: str) -> list[str]:
        return [n for n in per_library if word and word in n.rsplit("/", 1)[-1].lower()]

    own = named(package.lower().replace("-", "_"))
    if not own:
        words = [w for w in re.split(r"[-_.]", package.lower()) if w]
        for word in words:
            if not _VENDOR_WORDS.fullmatch(word):
                own += named(word)
    names = sorted(set(own) or per_library)
    name = max(names, key=lambda n: per_library[n].containers)
    return name, per_library[name]
