"""The CUDA kernels a shared object carries: SASS architectures and PTX (with its ISA).

nvcc embeds device code in a ``.nv_fatbin`` section as a sequence of *fatbin containers*:
a 16-byte header (magic ``0xBA55ED50``, version 1, header size 16, size of what follows)
and entries, each a header of at least 64 bytes followed by its payload::

    u16 kind        1 = PTX, 2 = ELF (SASS); others (LTO IR) are ignored
    u16 version     u32 header_size    u64 payload_size
    u32 compressed  u32 (unused here)
    u16 minor       u16 major          the PTX ISA version of a PTX entry (9.0 for CUDA 13.0)
    u32 arch        the sm number: 75, 90, 100, 120
    u32 name_offset u32 name_length
    u64 flags       0x100000: arch-specific ("sm_90a"), 0x200000: family ("sm_100f")
    ...

(The layout was checked against objects built here with nvcc 13.0 for known targets.)

`FatbinScanner` finds containers in a byte stream read front to back — a ``.so`` inflated
from a wheel's zip, or a file streamed out of an image layer — without the ELF section
table (which sits at the end of the file): containers are 8-byte aligned, and a candidate
is taken only when its header and every entry header are well formed; in an ELF file, only
where the program headers (at its start) say the loader maps the bytes. Pure and bounded:
it searches the bytes fed where they lie (`feed_span`: no copy) and keeps at most one
container or entry header cut by a piece's end in memory, the distinct kernels found
(at most `_MAX_KERNELS`), and 8 bytes per container (where it starts, to leave out the
relocatable ones at the end; at most `_MAX_CONTAINERS`). A file that holds more than
`_MAX_ENTRIES` entries is not read further: hostile bytes cost a bounded time per file.
"""

from __future__ import annotations

import bisect
import struct
from array import array
from dataclasses import dataclass, field

from reprolock.compat.arches import ArchList
from reprolock.model import ComputeCapability

MAGIC = b"\x50\xed\x55\xba"  # 0xBA55ED50, little-endian
KIND_PTX = 1
KIND_SASS = 2
FLAG_ARCH_SPECIFIC = 0x100000
FLAG_FAMILY = 0x200000
_CONTAINER = struct.Struct("<IHHQ")
_ENTRY = struct.Struct("<HHIQIIHHIIIQ")
_MAX_CONTAINER = 1 << 36  # no real container is near 64 GiB: larger is not a container
_MAX_ENTRY_HEADER = 4096
_MAX_CONTAINERS = 1 << 20  # containers remembered one by one (a big library has ~25,000)
_MAX_KERNELS = 1024  # distinct (kind, arch, ISA) entries kept: a real library has dozens
_MAX_GROUPS = 4096  # distinct sets of those that containers hold
_MAX_ENTRIES = 1 << 21  # entry headers read per file (the most in torch 2.5.1's wheels: 17,608)


@dataclass(frozen=True, slots=True, order=True)
class Ptx:
    """PTX for ``arch`` in ISA ``isa`` (``"9.0"``): JIT-compiled by a driver that knows
    that ISA, for any GPU at or above ``arch``."""

    arch: ComputeCapability
    isa: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Kernels:
    """What one file (or several, merged) carries."""

    sass: tuple[ComputeCapability, ...] = ()
    ptx: tuple[Ptx, ...] = ()
    containers: int = 0

    @property
    def empty(self) -> bool:
        return not self.sass and not self.ptx

    def merge(self, other: Kernels) -> Kernels:
        return Kernels(
            sass=tuple(sorted(set(self.sass) | set(other.sass), key=_order)),
            ptx=tuple(sorted(set(self.ptx) | set(other.ptx), key=_ptx_order)),
            containers=self.containers + other.containers,
        )

    @property
    def ptx_isa(self) -> str | None:
        """The highest PTX ISA it carries (what a driver must know to JIT all of it)."""
        return max((p.isa for p in self.ptx), key=_isa_order, default=None)

    def arch_list(self, *, sources: tuple[str, ...] = (), measured: str | None = None) -> ArchList:
        return ArchList(
            sass=self.sass,
            ptx=tuple(sorted({p.arch for p in self.ptx}, key=_order)),
            sources=sources,
            ptx_isa=self.ptx_isa,
            measured=measured,
        )

    def describe(self) -> str:
        """``sm_75 sm_80 sm_90, PTX compute_90 (ISA 8.8)``, or ``no CUDA kernels``."""
        if self.empty:
            return "no CUDA kernels"
        text = " ".join(c.sm for c in self.sass) or "no native kernels"
        if self.ptx:
            text += ", PTX " + " ".join(
                f"compute_{p.arch.major}{p.arch.minor}{p.arch.suffix} (ISA {p.isa})"
                for p in self.ptx
            )
        return text


def _order(cap: ComputeCapability) -> tuple[int, int, str]:
    return (cap.major, cap.minor, cap.suffix)


def _isa_order(isa: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else -1 for p in isa.split("."))


def _ptx_order(ptx: Ptx) -> tuple[tuple[int, int, str], str]:
    return (_order(ptx.arch), ptx.isa)


def capability(arch: int, flags: int) -> ComputeCapability | None:
    """``75`` → 7.5, ``100`` with the arch-specific flag → 10.0a; None when implausible."""
    if not 10 <= arch <= 999:
        return None
    suffix = "a" if flags & FLAG_ARCH_SPECIFIC else "f" if flags & FLAG_FAMILY else ""
    return ComputeCapability(arch // 10, arch % 10, suffix)


_ELF_HEADER = 64
_MAX_SECTIONS = 4096
_SEGMENT = struct.Struct("<IIQQQQQQ")  # an ELF64 program header
_MAX_SEGMENTS = 4096
_PT_LOAD = 1
_NAME = b"__nv_relfatbin\x00"  # the section of fatbins kept for device linking, never loaded
_MAX_SIGHTINGS = 4096


@dataclass(slots=True)
class _Elf:
    """Just enough of an ELF64 file, read while it streams past, to tell which byte ranges
    are relocatable fatbins (``__nv_relfatbin``): device code nvlink already linked into the
    loaded fatbin, whose PTX the driver never sees.

    The section table sits at the end of the file and the section names somewhere before it
    (in a large library, hundreds of MB before): rather than keep the file, the scanner notes
    where the name ``__nv_relfatbin`` appears, and matches those places with the table.

    Section names are not loaded: linkers put them after the last loaded segment. Once the
    program headers (which follow the ELF header) are read, the name is looked for only past
    the end of the loaded segments, not in the code and data before it (most of a library).
    A name table placed where it was not looked for leaves no place matched: nothing is
    left out, as for a file without a section table.

    The same program headers say which bytes are loaded at all (`loaded_within`): a fatbin
    the loader does not map (in debug information, a symbol table, bytes appended past the
    sections) is never seen by a driver, and is not looked for."""

    head: bytearray = field(default_factory=bytearray)
    table: bytearray = field(default_factory=bytearray)
    program: bytearray = field(default_factory=bytearray)  # the program headers
    names_from: int = 0  # where names are looked for from (the end of the loaded segments)
    loads: list[tuple[int, int]] | None = None  # the loaded byte ranges, sorted, disjoint
    load_lows: list[int] = field(default_factory=list)  # where each of them starts
    loads_from: int = 0  # bytes before this were fed before the program headers were known
    sightings: set[int] = field(default_factory=set)  # where "__nv_relfatbin\0" starts
    carry: bytes = b""  # the previous piece's last bytes (a name split between pieces)

    def observe(self, data: bytes, lo: int, hi: int, position: int, *, payload: int = 0) -> None:
        """Take in the next piece of the file, ``data[lo:hi]`` (at ``position`` in the file);
        its first ``payload`` bytes are a fatbin entry's payload, where no section name lies
        (not searched: most of a CUDA library's bytes are payload)."""
        if len(self.head) < _ELF_HEADER:
            self.head += data[lo : min(hi, lo + _ELF_HEADER - len(self.head))]
        layout = self._layout()
        if layout is not None:
            self._gather(self.table, layout[0], layout[1] * layout[2], data, lo, hi, position)
        program = self._program()
        if program is not None and len(self.program) < program[1]:
            self._gather(self.program, *program, data, lo, hi, position)
            if len(self.program) == program[1]:
                # bytes before here were looked through; from here, only past the loads
                self.loads = self._loaded()
                self.load_lows = [lo for lo, _hi in self.loads]
                self.loads_from = position
                self.names_from = max(position, self.loads[-1][1] if self.loads else 0)
        payload = max(payload, min(hi - lo, self.names_from - position))
        # a name across the previous piece's end, then in this piece (not joined: a copy of
        # every piece would cost as much as the search)
        keep = len(_NAME) - 1
        if payload:
            self.carry = b""
        start = lo + payload
        edge = self.carry + data[start : min(hi, start + keep)]
        self._find(edge, position + payload - len(self.carry), below=len(self.carry))
        self._find(data, position - lo, below=hi, start=start, end=hi)
        rest = hi - start
        self.carry = data[hi - keep : hi] if rest >= keep else edge[-keep:] if rest else self.carry

    def _find(
        self, data: bytes, base: int, *, below: int, start: int = 0, end: int | None = None
    ) -> None:
        """Note where the name starts in ``data[start:end]`` (before ``below``); ``base`` is
        where ``data`` starts in the file."""
        at = data.find(_NAME, start, end)
        while 0 <= at < below and len(self.sightings) < _MAX_SIGHTINGS:
            self.sightings.add(base + at)
            at = data.find(_NAME, at + 1, end)

    def _gather(
        self, into: bytearray, offset: int, size: int, data: bytes, lo: int, hi: int, position: int
    ) -> None:
        """Add to ``into`` what ``data[lo:hi]`` (at ``position``) holds of the table at
        ``offset`` (``size`` bytes) from where ``into`` stops; a table overlapping the ELF
        header starts from the header's kept bytes (they streamed past before the header was
        whole), so how the file is cut into pieces changes nothing."""
        if not into and offset < len(self.head):
            into += self.head[offset : offset + size]
        want, last = offset + len(into), min(offset + size, position + hi - lo)
        if position <= want < last:
            into += data[lo + want - position : lo + last - position]

    def _program(self) -> tuple[int, int] | None:
        """(e_phoff, the size of the program headers) of a little-endian ELF64 file."""
        head = self.head
        if len(head) < _ELF_HEADER or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
            return None
        (phoff,) = struct.unpack_from("<Q", head, 0x20)
        entsize, count = struct.unpack_from("<HH", head, 0x36)
        if entsize != _SEGMENT.size or not 0 < count <= _MAX_SEGMENTS:
            return None
        return phoff, entsize * count

    def _loaded(self) -> list[tuple[int, int]]:
        """The file ranges the loadable segments map, sorted, overlapping ones joined."""
        return _disjoint(
            [
                (offset, offset + size)
                for kind, _flags, offset, _vaddr, _paddr, size, _memsz, _align in (
                    _SEGMENT.iter_unpack(self.program)
                )
                if kind == _PT_LOAD and size > 0
            ]
        )

    def loaded_within(self, first: int, last: int) -> list[tuple[int, int]]:
        """The parts of the file range [``first``, ``last``) where a loaded fatbin may start:
        all of it until the program headers are known (and what was fed before), else the
        parts the loadable segments map."""
        if self.loads is None:
            return [(first, last)]
        out = [(first, min(last, self.loads_from))] if first < self.loads_from else []
        at = max(0, bisect.bisect_right(self.load_lows, first) - 1)
        for load_lo, load_hi in self.loads[at:]:
            if load_lo >= last:
                break
            lo, hi = max(load_lo, first, self.loads_from), min(load_hi, last)
            if lo < hi:
                if out and lo <= out[-1][1]:
                    out[-1] = (out[-1][0], max(out[-1][1], hi))
                else:
                    out.append((lo, hi))
        return out

    def _layout(self) -> tuple[int, int, int, int] | None:
        """(e_shoff, e_shentsize, e_shnum, e_shstrndx) of a little-endian ELF64 file."""
        head = self.head
        if len(head) < _ELF_HEADER or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
            return None
        (shoff,) = struct.unpack_from("<Q", head, 0x28)
        entsize, count, names = struct.unpack_from("<HHH", head, 0x3A)
        if entsize != 64 or not 0 < count <= _MAX_SECTIONS or names >= count:
            return None
        return shoff, entsize, count, names

    def relocatable(self) -> list[tuple[int, int]]:
        """The file ranges of ``__nv_relfatbin`` sections (empty when unknown)."""
        layout = self._layout()
        if layout is None or len(self.table) != layout[1] * layout[2] or not self.sightings:
            return []
        rows = [struct.unpack_from("<IIQQQQ", self.table, 64 * i) for i in range(layout[2])]
        names_at = rows[layout[3]][4]
        return [
            (offset, offset + size)
            for name_at, _type, _flags, _addr, offset, size in rows
            if names_at + name_at in self.sightings
        ]


Triple = tuple[int, ComputeCapability, str]  # (kind, arch, PTX ISA) of an entry


@dataclass(slots=True)
class FatbinScanner:
    """Feed a file's bytes in order (`feed`), then read the kernels (`finish`)."""

    _carry: bytearray = field(default_factory=bytearray)  # a structure cut by a piece's end
    _carry_at: int = 0  # where _carry[0] is in the file
    _position: int = 0  # bytes fed so far
    _skip: int = 0  # payload bytes still to pass over
    _left: int = 0  # bytes of the current container still to read (0: searching)
    _start: int = 0  # where the current container starts
    _entries: int = 0  # entry headers read so far (parsing stops at _MAX_ENTRIES)
    _pending: dict[int, None] = field(default_factory=dict)  # the container's kernels so far
    _kernels: dict[Triple, int] = field(default_factory=dict)  # each distinct one, numbered
    # the containers read, grouped by the kernels they hold, with where each starts;
    # past the bounds, only how many more there were and their kernels (counted as loaded)
    _groups: dict[tuple[int, ...], array[int]] = field(default_factory=dict)
    _placed: int = 0
    _unplaced: int = 0
    _unplaced_kernels: set[int] = field(default_factory=set)
    _elf: _Elf = field(default_factory=_Elf)

    def feed(self, data: bytes | memoryview) -> None:
        """Feed the next bytes of the file (a view is copied: `feed_span` takes a piece of a
        larger ``bytes`` as it is)."""
        piece = data if isinstance(data, bytes) else bytes(data)
        self.feed_span(piece, 0, len(piece))

    def feed_span(self, data: bytes, lo: int, hi: int) -> None:
        """Feed ``data[lo:hi]``, the next bytes of the file, without copying them: they are
        searched where they lie, and only a container or entry header cut by the span's end
        (at most `_MAX_ENTRY_HEADER` bytes) is kept for the next span."""
        if not 0 <= lo <= hi <= len(data):
            raise ValueError(f"a span {lo}:{hi} outside {len(data)} bytes")
        reading = self._entries < _MAX_ENTRIES
        self._elf.observe(
            data, lo, hi, self._position, payload=min(self._skip, hi - lo) if reading else 0
        )
        base = self._position - lo  # where data[0] would be in the file
        self._position += hi - lo
        at = lo
        while reading and self._carry and at < hi:
            # the cut structure, completed from this span: at most what it can still need
            take = min(hi - at, _MAX_ENTRY_HEADER)
            self._carry += data[at : at + take]
            used = self._run(self._carry, 0, len(self._carry), self._carry_at)
            rest = len(self._carry) - used
            at += take
            if rest > take:  # still short of bytes fed before this span
                del self._carry[:used]
                self._carry_at += used
            else:  # what is left came from this span: read on in it
                at -= rest
                self._carry.clear()
            reading = self._entries < _MAX_ENTRIES
        if reading and at < hi:
            used = self._run(data, at, hi, base)
            if used < hi and self._entries < _MAX_ENTRIES:
                self._carry += data[used:hi]
                self._carry_at = base + used
        if self._entries >= _MAX_ENTRIES:
            self._carry.clear()

    def finish(self) -> Kernels:
        """The kernels of the loadable fatbins found (a container cut short by the end of
        the stream counts for the entries it held)."""
        if self._left:
            self._end_container(complete=True)
        ranges = _disjoint(self._elf.relocatable())
        lows = [lo for lo, _hi in ranges]
        # containers found before the program headers were known, outside what they map
        mapped = self._elf.loads
        used = set(self._unplaced_kernels)
        containers = self._unplaced
        for group, starts in self._groups.items():
            loaded = sum(
                1
                for start in starts
                if not _inside(start, ranges, lows)
                and (mapped is None or _inside(start, mapped, self._elf.load_lows))
            )
            if loaded:
                containers += loaded
                used.update(group)
        sass: set[ComputeCapability] = set()
        ptx: set[Ptx] = set()
        for (kind, cap, isa), number in self._kernels.items():
            if number not in used:
                continue
            if kind == KIND_SASS:
                sass.add(cap)
            else:
                ptx.add(Ptx(cap, isa))
        return Kernels(
            sass=tuple(sorted(sass, key=_order)),
            ptx=tuple(sorted(ptx, key=_ptx_order)),
            containers=containers,
        )

    # -- the state machine ----------------------------------------------------------------
    def _run(self, data: bytes | bytearray, at: int, end: int, base: int) -> int:
        """Read ``data[at:end]`` (``base`` is where ``data[0]`` is in the file); returns where
        reading stopped: bytes from there on are a structure that needs more of them."""
        while at < end:
            if self._skip:
                step = min(self._skip, end - at)
                self._skip -= step
                self._left -= step
                at += step
                if self._skip:
                    return at
                if self._left == 0:
                    self._end_container(complete=True)
                continue
            if self._left:
                at, done = self._entry(data, at, end)
                if self._entries >= _MAX_ENTRIES:  # hostile: read no further
                    return end
            else:
                at, done = self._search(data, at, end, base)
            if not done:
                return at
        return at

    def _search(self, data: bytes | bytearray, at: int, end: int, base: int) -> tuple[int, bool]:
        """Find the next aligned container header where the file is loaded: (where reading
        goes on, whether one was read); not read when more bytes are needed from there."""
        windows = self._elf.loaded_within(base + at, base + end)
        for first, last in windows:
            start, stop = first - base, last - base  # a header starts in [start, stop)
            while True:
                found = data.find(MAGIC, start, min(end, stop + len(MAGIC) - 1))
                if found < 0:
                    break
                if (base + found) % 8:
                    start = found + 1
                    continue
                if end - found < _CONTAINER.size:
                    return found, False
                _magic, version, header, size = _CONTAINER.unpack_from(data, found)
                if version == 1 and 16 <= header <= 64 and 0 < size <= _MAX_CONTAINER:
                    if end - found < header:
                        return found, False
                    self._start = base + found
                    self._left = size
                    self._pending = {}
                    return found + header, True
                start = found + 1
        if windows and windows[-1][1] == base + end:  # the last bytes may begin a header
            return max(windows[-1][0] - base, end - (len(MAGIC) - 1)), False
        return end, False

    def _entry(self, data: bytes | bytearray, at: int, end: int) -> tuple[int, bool]:
        """Read one entry header of the current container: (where reading goes on, whether
        it was read); not read when more bytes are needed."""
        if self._left < _ENTRY.size:  # no room for another entry: padding at the end
            if end - at < self._left:
                return at, False
            at += self._left
            self._end_container(complete=True)
            return at, True
        if end - at < _ENTRY.size:
            return at, False
        fields = _ENTRY.unpack_from(data, at)
        kind, header, payload = fields[0], fields[2], fields[3]
        minor, major, arch, flags = fields[6], fields[7], fields[8], fields[11]
        if not (
            _ENTRY.size <= header <= _MAX_ENTRY_HEADER
            and header + payload <= self._left
            and kind in (KIND_PTX, KIND_SASS, 4, 8, 16)
        ):
            self._end_container(complete=False)
            return at, True
        if end - at < header:
            return at, False
        cap = capability(arch, flags)
        if cap is None and kind in (KIND_PTX, KIND_SASS):
            self._end_container(complete=False)
            return at, True
        if cap is not None and kind in (KIND_PTX, KIND_SASS):
            self._note((kind, cap, f"{major}.{minor}"))
        self._entries += 1
        if self._entries >= _MAX_ENTRIES:  # hostile: read no further
            self._end_container(complete=True)
            return end, True
        self._left -= header
        self._skip = payload
        if payload == 0 and self._left == 0:
            self._end_container(complete=True)
        return at + header, True

    def _note(self, kernel: Triple) -> None:
        """One entry's kernel, numbered once per file (new ones beyond the bound are not
        kept: no real library has that many)."""
        number = self._kernels.get(kernel)
        if number is None:
            if len(self._kernels) >= _MAX_KERNELS:
                return
            number = self._kernels[kernel] = len(self._kernels)
        self._pending[number] = None

    def _end_container(self, *, complete: bool) -> None:
        """A container ends: its entries count when it was well formed to the end."""
        if complete and self._pending:
            group = tuple(sorted(self._pending))
            starts = self._groups.get(group)
            if starts is None and len(self._groups) < _MAX_GROUPS:
                starts = self._groups[group] = array("q")
            if starts is not None and self._placed < _MAX_CONTAINERS:
                starts.append(self._start)
                self._placed += 1
            else:  # beyond the bounds: counted wherever it lies
                self._unplaced += 1
                self._unplaced_kernels.update(group)
        self._pending = {}
        self._left = 0
        self._skip = 0


def _disjoint(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``ranges`` sorted, overlapping ones joined."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _inside(start: int, ranges: list[tuple[int, int]], lows: list[int]) -> bool:
    """Whether ``start`` lies in one of ``ranges`` (disjoint, sorted; ``lows`` their starts)."""
    at = bisect.bisect_right(lows, start) - 1
    return at >= 0 and start < ranges[at][1]


def scan(data: bytes | memoryview) -> Kernels:
    """The kernels in a whole file's bytes."""
    scanner = FatbinScanner()
    scanner.feed(data)
    return scanner.finish()
