"""The CUDA fatbin scanner: real ELF objects built by nvcc (tests/data/fatbin/build.sh),
gcc-built ones with a hand-made fatbin section, wheels streamed through it, hostile bytes."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import zipfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reprolock.compat.fatbin import FatbinScanner, Kernels, Ptx, scan
from reprolock.compat.wheel_kernels import Member, WheelKernels, primary
from reprolock.errors import SourceError
from tests import realparts
from tests.fatbin_reference import kernels as reference

FIXTURES = Path(__file__).parent / "data" / "fatbin"
# What build.sh asked nvcc 13.0 for (PTX ISA 9.0 is nvcc 13.0's).
EXPECTED = {
    "libsass75-80_ptx90.so": ({"7.5", "8.0"}, {("9.0", "9.0")}),
    "libsass90a-100f-120_ptx120.so": ({"9.0a", "10.0f", "12.0"}, {("12.0", "9.0")}),
    "librdc_sass80.so": ({"8.0"}, set()),  # its PTX is only in __nv_relfatbin
}


def _ours(kernels: Kernels) -> tuple[set[str], set[tuple[str, str]]]:
    return {str(c) for c in kernels.sass}, {(str(p.arch), p.isa) for p in kernels.ptx}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_nvcc_built_libraries(name: str) -> None:
    data = (FIXTURES / name).read_bytes()
    found = _ours(scan(data))
    assert found == EXPECTED[name]
    assert found == reference(data)  # the independent, section-based reader agrees


@pytest.mark.parametrize("size", [1, 3, 8, 61, 4096, 1 << 20])
def test_any_chunking_gives_the_same_answer(size: int) -> None:
    for name in EXPECTED:
        data = (FIXTURES / name).read_bytes()
        scanner = FatbinScanner()
        for start in range(0, len(data), size):
            scanner.feed(data[start : start + size])
        assert scanner.finish() == scan(data), (name, size)


@given(st.lists(st.integers(1, 5000), min_size=1, max_size=40), st.sampled_from(sorted(EXPECTED)))
def test_spans_of_one_buffer_give_the_same_answer(cuts: list[int], name: str) -> None:
    """`feed_span` reads pieces where they lie in a larger buffer (the image walk's way):
    any cutting of the file into spans, at any offset in the buffer, reads the same."""
    data = (FIXTURES / name).read_bytes()
    buffer = b"junk" + data + b"more junk"
    scanner = FatbinScanner()
    at = 4
    for cut in cuts:
        scanner.feed_span(buffer, at, min(at + cut, 4 + len(data)))
        at = min(at + cut, 4 + len(data))
    scanner.feed_span(buffer, at, 4 + len(data))
    assert scanner.finish() == scan(data)


@given(
    st.binary(max_size=3000),
    st.lists(st.integers(0, 400), max_size=6),
    st.lists(st.integers(1, 700), min_size=1, max_size=30),
)
def test_spans_read_noise_and_containers_as_the_whole(
    noise: bytes, places: list[int], cuts: list[int]
) -> None:
    """Containers (some cut short) at aligned places in noise, fed as spans of any length:
    the same kernels and container count as the whole file at once."""
    data = bytearray(noise)
    for n, place in enumerate(places):
        at = min(place - place % 8, len(data) - len(data) % 8)
        blob = container((2, 70 + 5 * n, 1, 8, 0), (1, 80, 8, n % 9, 0))
        data[at:at] = blob if n % 3 else blob[: len(blob) // 2]
    whole = bytes(data)
    scanner = FatbinScanner()
    at = 0
    for cut in cuts * (len(whole) // sum(cuts) + 1):
        if at >= len(whole):
            break
        scanner.feed_span(whole, at, min(at + cut, len(whole)))
        at += cut
    assert scanner.finish() == scan(whole)


@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 1 << 64 - 1), st.integers(0, 1 << 64 - 1)),
        max_size=8,
    ),
    st.integers(0, 1 << 64 - 1),
    st.binary(max_size=1500),
    st.integers(1, 600),
)
def test_hostile_program_headers(
    segments: list[tuple[int, int, int]], phoff: int, noise: bytes, cut: int
) -> None:
    """Program headers of any type, offset and size (huge, overlapping, past the end, the
    table itself anywhere): the scan ends without error, cut into spans or not, and a
    container is counted only where a loadable segment maps it."""
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    at = 64 if phoff % 3 else phoff % 4096  # usually right after the ELF header
    struct.pack_into("<QHH", header, 0x20, at, 0, 0)
    struct.pack_into("<HH", header, 0x36, 56, len(segments))
    table = b"".join(
        struct.pack("<IIQQQQQQ", kind, 4, offset, 0, 0, size, size, 8)
        for kind, offset, size in segments
    )
    body = bytearray(noise)
    body[at - 64 : at - 64] = table if at >= 64 else b""
    data = bytes(header + body)
    data += bytes(-len(data) % 8) + container((2, 86, 1, 8, 0))
    scanner = FatbinScanner()
    for start in range(0, len(data), cut):
        scanner.feed_span(data, start, min(start + cut, len(data)))
    assert scanner.finish() == scan(data)


def test_padding_at_a_containers_end_reads_the_same_however_cut() -> None:
    """Fewer bytes left in a container than an entry header takes are padding, whatever
    follows them: the container counts whether the bytes after it came in the same piece
    or not (reading the next bytes as an entry header made it count only when they did not)."""
    body = container((2, 86, 1, 8, 0))[16:] + bytes(24)  # one entry, then 24 bytes of padding
    padded = struct.pack("<IHHQ", 0xBA55ED50, 1, 16, len(body)) + body
    data = padded + b"\xff" * 200
    found = scan(data)
    assert [str(c) for c in found.sass] == ["8.6"] and found.containers == 1
    for cut in (1, 5, 64, 100):
        scanner = FatbinScanner()
        for start in range(0, len(data), cut):
            scanner.feed(data[start : start + cut])
        assert scanner.finish() == found, cut


def test_a_span_outside_the_buffer_is_refused() -> None:
    with pytest.raises(ValueError):
        FatbinScanner().feed_span(b"abc", 2, 5)


def test_section_names_are_looked_for_past_the_loaded_segments() -> None:
    """The relocatable fatbin's name is found in the unloaded tail (readelf: the last LOAD
    ends at 0x3db8 + 0x308), and the code and data before it are not searched for it."""
    data = (FIXTURES / "librdc_sass80.so").read_bytes()
    scanner = FatbinScanner()
    scanner.feed(data)
    assert scanner._elf.names_from == 0x3DB8 + 0x308
    assert scanner._elf.sightings and min(scanner._elf.sightings) >= 0x3DB8 + 0x308
    assert _ours(scanner.finish()) == EXPECTED["librdc_sass80.so"]
    # names placed inside a loaded segment are not seen: nothing is left out, as for a file
    # without a section table (the relocatable PTX counts)
    loaded_to_end = bytearray(data)
    phoff = struct.unpack_from("<Q", data, 0x20)[0]
    count = struct.unpack_from("<H", data, 0x38)[0]
    for i in range(count):  # stretch every LOAD segment to the end of the file
        at = phoff + 56 * i
        if struct.unpack_from("<I", data, at)[0] == 1:
            offset = struct.unpack_from("<Q", data, at + 8)[0]
            struct.pack_into("<Q", loaded_to_end, at + 32, len(data) - offset)
    sass, ptx = _ours(scan(bytes(loaded_to_end)))
    assert sass == {"8.0"} and ptx  # the PTX of __nv_relfatbin, no longer told apart


def test_only_loaded_bytes_are_searched_for_fatbins() -> None:
    """A container after the loaded segments (appended to the file, as in a symbol table or
    debug information) is never mapped, so no driver loads it: not counted, by the section
    reader either. Program headers that map it make it count."""
    data = (FIXTURES / "libsass75-80_ptx90.so").read_bytes()
    padded = data + bytes(-len(data) % 8)
    appended = padded + container((2, 86, 1, 8, 0))
    assert _ours(scan(appended)) == EXPECTED["libsass75-80_ptx90.so"] == reference(appended)
    scanner = FatbinScanner()
    for start in range(0, len(appended), 7):
        scanner.feed(appended[start : start + 7])
    assert scanner.finish() == scan(appended)
    # the last LOAD segment stretched over the appended container: now it is loaded
    mapped = bytearray(appended)
    phoff = struct.unpack_from("<Q", data, 0x20)[0]
    count = struct.unpack_from("<H", data, 0x38)[0]
    last = max(
        (
            phoff + 56 * i
            for i in range(count)
            if struct.unpack_from("<I", data, phoff + 56 * i)[0] == 1
        ),
        key=lambda at: struct.unpack_from("<Q", data, at + 8)[0],
    )
    offset = struct.unpack_from("<Q", data, last + 8)[0]
    struct.pack_into("<Q", mapped, last + 32, len(appended) - offset)
    assert "8.6" in _ours(scan(bytes(mapped)))[0]
    # without program headers (not ELF) every byte is searched
    assert "8.6" in _ours(scan(bytes(8) + container((2, 86, 1, 8, 0))))[0]


def test_describe() -> None:
    kernels = scan((FIXTURES / "libsass75-80_ptx90.so").read_bytes())
    assert kernels.describe() == "sm_75 sm_80, PTX compute_90 (ISA 9.0)"
    assert kernels.arch_list().describe() == "sm_75 sm_80, PTX compute_90"
    assert kernels.arch_list().ptx_isa == kernels.ptx_isa == "9.0"
    # the highest ISA by number, not by text
    mixed = Kernels(ptx=(Ptx(kernels.sass[0], "8.10"), Ptx(kernels.sass[0], "8.9")))
    assert mixed.ptx_isa == "8.10"
    assert scan(b"\x7fELF" + bytes(100)).describe() == "no CUDA kernels"


# -- hand-made fatbins in a gcc-built object ---------------------------------------------------
def container(*entries: tuple[int, int, int, int, int]) -> bytes:
    """A fatbin container of (kind, arch, major, minor, flags) entries, 16-byte payloads."""
    body = b""
    for kind, arch, major, minor, flags in entries:
        header = struct.pack(
            "<HHIQIIHHIIIQ", kind, 0x101, 64, 16, 0, 0, minor, major, arch, 0, 0, flags
        )
        body += header.ljust(64, b"\0") + b"P" * 16
    return struct.pack("<IHHQ", 0xBA55ED50, 1, 16, len(body)) + body


@realparts.needs("gcc")
def test_hand_made_section_in_a_gcc_object(tmp_path: Path) -> None:
    """A fatbin section written by hand and linked by gcc, as nvcc's host code does."""
    blob = container((2, 86, 1, 8, 0x11), (2, 90, 1, 8, 0x100011), (1, 90, 8, 5, 0x8011))
    blob += container((2, 120, 1, 8, 0x1000011))
    source = tmp_path / "x.c"
    source.write_text(
        '__attribute__((section(".nv_fatbin"), aligned(8), used))\n'
        f"static const unsigned char fatbin[] = {{{', '.join(str(b) for b in blob)}}};\n"
        "int f(void) { return fatbin[0]; }\n"
    )
    library = tmp_path / "libx.so"
    subprocess.run(["gcc", "-shared", "-fPIC", str(source), "-o", str(library)], check=True)
    data = library.read_bytes()
    found = _ours(scan(data))
    assert found == ({"8.6", "9.0a", "12.0"}, {("9.0", "8.5")})
    assert found == reference(data)


def test_implausible_containers_are_not_kernels() -> None:
    good = container((2, 80, 1, 8, 0x11))
    bad_version = good[:4] + struct.pack("<H", 7) + good[6:]
    bad_entry = good[:16] + struct.pack("<H", 2) + bytes(2) + struct.pack("<I", 8) + good[24:]
    bad_arch = good[:44] + struct.pack("<I", 5) + good[48:]  # arch: entry (16) + 28
    for blob in (bad_version, bad_entry, bad_arch, b"\x50\xed\x55\xba" * 100):
        assert scan(bytes(8) + blob).empty
    assert str(scan(bytes(8) + good).sass[0]) == "8.0"
    assert scan(bytes(4) + good).empty  # containers sit at 8-aligned offsets


@given(st.binary(max_size=2000), st.integers(0, 300))
def test_any_bytes_scan_without_error(noise: bytes, at: int) -> None:
    at -= at % 8
    data = noise[:at].ljust(at, b"\0") + container((2, 75, 1, 8, 0)) + noise[at:]
    assert "7.5" in {str(c) for c in scan(data).sass}
    scan(noise)


def _tiny(kind: int, arch: int, major: int, minor: int) -> bytes:
    """A container of one entry with no payload (the smallest well-formed one)."""
    header = struct.pack("<HHIQIIHHIIIQ", kind, 0x101, 64, 0, 0, 0, minor, major, arch, 0, 0, 0)
    return struct.pack("<IHHQ", 0xBA55ED50, 1, 16, 64) + header.ljust(64, b"\0")


def test_hostile_kernel_counts_are_bounded() -> None:
    """Every container naming another PTX ISA: what is kept stays small, however many."""
    import tracemalloc

    from reprolock.compat import fatbin

    data = b"".join(_tiny(1, 80, i % 200, i // 200) for i in range(20_000))
    tracemalloc.start()
    try:
        found = scan(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(found.ptx) == fatbin._MAX_KERNELS
    assert found.containers == fatbin._MAX_KERNELS  # those holding a kernel kept
    assert peak < len(data) + (4 << 20)  # the bytes given, and a few MB besides


def test_a_file_is_read_up_to_a_number_of_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    from reprolock.compat import fatbin

    monkeypatch.setattr(fatbin, "_MAX_ENTRIES", 100)
    data = b"".join(_tiny(2, 75, 1, 8) for _ in range(150)) + _tiny(2, 86, 1, 8)
    scanner = FatbinScanner()
    for start in range(0, len(data), 1000):
        scanner.feed(data[start : start + 1000])
    found = scanner.finish()
    assert [str(c) for c in found.sass] == ["7.5"]  # sm_86, after the 100th entry: not read
    assert found.containers == 100


# -- wheels, streamed ------------------------------------------------------------------------
def _wheel(
    members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED
) -> tuple[bytes, list[Member]]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    raw = buffer.getvalue()
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        table = [
            Member(
                name=i.filename,
                offset=i.header_offset,
                compressed_size=i.compress_size,
                size=i.file_size,
                method=i.compress_type,
            )
            for i in archive.infolist()
        ]
    return raw, table


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
@pytest.mark.parametrize("chunk", [7, 4096, 1 << 20])
def test_a_wheel_streamed_once(method: int, chunk: int) -> None:
    members = {
        "demo/__init__.py": b"",
        "demo/lib/libsass.so": (FIXTURES / "libsass75-80_ptx90.so").read_bytes(),
        "demo/lib/libarch.so.12": (FIXTURES / "libsass90a-100f-120_ptx120.so").read_bytes(),
        "demo/lib/libnone.so": b"\x7fELF" + bytes(500),
        "demo-1.0.dist-info/RECORD": b"",
    }
    raw, table = _wheel(members, method)
    scanner = WheelKernels(what="demo.whl", members=table)
    for start in range(0, len(raw), chunk):
        scanner.feed(raw[start : start + chunk])
    found = scanner.finish()
    assert sorted(found) == ["demo/lib/libarch.so.12", "demo/lib/libsass.so"]
    assert _ours(found["demo/lib/libsass.so"]) == EXPECTED["libsass75-80_ptx90.so"]
    assert primary(found) is not None


def test_hostile_wheels() -> None:
    members = {"a/liba.so": (FIXTURES / "libsass75-80_ptx90.so").read_bytes()}
    raw, table = _wheel(members)
    small = [
        Member(
            name=m.name,
            offset=m.offset,
            compressed_size=m.compressed_size,
            size=10,
            method=m.method,
        )
        for m in table
    ]
    with pytest.raises(SourceError, match="longer than the size its central directory gives"):
        scanner = WheelKernels(what="w", members=small)
        scanner.feed(raw)
    moved = [
        Member(
            name=m.name,
            offset=m.offset + 3,
            compressed_size=m.compressed_size,
            size=m.size,
            method=m.method,
        )
        for m in table
    ]
    with pytest.raises(SourceError, match="no local header"):
        WheelKernels(what="w", members=moved).feed(raw)
    cut = WheelKernels(what="w", members=table)
    cut.feed(raw[: len(raw) // 2])
    with pytest.raises(SourceError, match="ended before"):
        cut.finish()


# -- real wheels from PyPI (opt-in): the scanner agrees with the section-based reader --------
LIVE_WHEELS = [
    "nvidia-curand-cu12==10.3.9.90",
    "bitsandbytes==0.50.2",
    "nvidia-cufft-cu12==11.4.1.4",
]


@pytest.mark.live
@pytest.mark.parametrize("pin", LIVE_WHEELS)
def test_live_wheels_agree_with_the_reference_reader(pin: str, tmp_path: Path) -> None:
    import requests

    from reprolock.api.measure import measure
    from reprolock.api.network import NetOptions
    from reprolock.model import Platform, PythonVersion
    from reprolock.net.config import NetConfig

    net = NetOptions(config=NetConfig.from_environment(dict(os.environ)), cache_dir=tmp_path)
    result = measure(
        pin, platform=Platform.parse("linux/amd64"), python=PythonVersion.parse("3.11"), net=net
    )
    data = requests.get(result.url, timeout=600, verify=net.config.ca_bundle).content
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name, kernels in result.libraries.items():
            assert _ours(kernels) == reference(archive.read(name)), name


def test_the_primary_library_is_the_one_named_after_the_package() -> None:
    """A row describes the package's own library, not the largest vendored one: the word of
    an NVIDIA wheel's name that is not nvidia, cuda or cuXY names it."""
    many, few = Kernels(containers=40), Kernels(containers=3)
    cupti = {
        "nvidia/cuda_cupti/lib/libcheckpoint.so": many,
        "nvidia/cuda_cupti/lib/libcupti.so.12": few,
        "nvidia/cuda_cupti/lib/libpcsamplingutil.so": few,
    }
    assert primary(cupti, "nvidia-cuda-cupti-cu12") == ("nvidia/cuda_cupti/lib/libcupti.so.12", few)
    torch = {"torch/lib/libcusparseLt.so": many, "torch/lib/libtorch_cuda.so": few}
    assert primary(torch, "torch") == ("torch/lib/libtorch_cuda.so", few)
    # Nothing named after the package: the library with the most containers.
    assert primary(cupti, "something-else") == ("nvidia/cuda_cupti/lib/libcheckpoint.so", many)
    vendor_words_only = primary(cupti, "nvidia-cuda-cu12")
    assert vendor_words_only is not None
    assert vendor_words_only[0].endswith("libcheckpoint.so")
