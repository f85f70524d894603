"""A second, independent reader of CUDA fatbins, to cross-check reprolock's scanner.

reprolock's `FatbinScanner` streams a file front to back and finds containers by their
magic without the ELF section table. This reader does it the other way: it parses the ELF
section headers, skips sections without file bytes and the relocatable `__nv_relfatbin`,
and walks the containers of every other section at 8-byte aligned addresses. Both must
find the same SASS and PTX (tests/test_fatbin.py, and the live check over PyPI wheels).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

SHT_NOBITS = 8


def sections(data: bytes) -> Iterator[tuple[str, int, int]]:
    """(name, file offset, size) of every section with bytes in a little-endian ELF64."""
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, "not ELF64 LE"
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    entsize, count, names_index = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * entsize) for i in range(count)]
    names_header = headers[names_index]
    names = data[names_header[4] : names_header[4] + names_header[5]]
    for header in headers:
        if header[1] == SHT_NOBITS or header[5] == 0:
            continue
        name = names[header[0] : names.index(b"\0", header[0])].decode()
        yield name, header[4], header[5]


def containers(section: bytes, base: int) -> Iterator[tuple[set[str], set[tuple[str, str]]]]:
    """(SASS, PTX (arch, ISA)) of each container in ``section`` (at file offset ``base``)."""
    pos = (-base) % 8
    while pos + 16 <= len(section):
        magic, version, header, size = struct.unpack_from("<IHHQ", section, pos)
        if magic != 0xBA55ED50 or version != 1 or header != 16:
            pos += 8
            continue
        sass: set[str] = set()
        ptx: set[tuple[str, str]] = set()
        entry, end = pos + header, pos + header + size
        while entry < end:
            kind, _version, entry_header, payload = struct.unpack_from("<HHIQ", section, entry)
            minor, major, arch = struct.unpack_from("<HHI", section, entry + 24)
            (flags,) = struct.unpack_from("<Q", section, entry + 40)
            suffix = "a" if flags & 0x100000 else "f" if flags & 0x200000 else ""
            capability = f"{arch // 10}.{arch % 10}{suffix}"
            if kind == 2:
                sass.add(capability)
            elif kind == 1:
                ptx.add((capability, f"{major}.{minor}"))
            entry += entry_header + payload
        yield sass, ptx
        pos = end


def kernels(data: bytes) -> tuple[set[str], set[tuple[str, str]]]:
    """Every loaded SASS and PTX of an ELF shared object."""
    sass: set[str] = set()
    ptx: set[tuple[str, str]] = set()
    for name, offset, size in sections(data):
        if name == "__nv_relfatbin":
            continue
        for found_sass, found_ptx in containers(data[offset : offset + size], offset):
            sass |= found_sass
            ptx |= found_ptx
    return sass, ptx
