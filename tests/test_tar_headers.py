"""Tar headers decoded by tarfile's own code with a faster checksum (reprolock.image.tarheaders)."""

from __future__ import annotations

import io
import tarfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reprolock.image.tarheaders import TarInfo, header_checksums


@given(st.binary(min_size=512, max_size=512))
def test_checksums_equal_tarfiles(buf: bytes) -> None:
    assert header_checksums(buf) == tarfile.calc_chksums(buf)  # type: ignore[attr-defined]


@pytest.mark.skipif(
    "calc_chksums" not in tarfile.TarInfo.frombuf.__func__.__code__.co_names,  # type: ignore[attr-defined]
    reason="this Python's tarfile decodes headers without calc_chksums: its own frombuf is kept",
)
def test_the_faster_checksum_is_the_one_used() -> None:
    assert TarInfo.frombuf.__func__.__globals__["calc_chksums"] is header_checksums


@given(
    st.text(min_size=1, max_size=200).filter(lambda n: "\0" not in n),
    st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE]),
    st.integers(0, 3000),
    st.sampled_from(["ustar", "gnu", "pax"]),
)
def test_headers_decode_as_tarfile_decodes_them(
    name: str, kind: bytes, size: int, form: str
) -> None:
    """Every header tarfile writes (long names, each format) is read back by the walk's
    `TarInfo` exactly as by tarfile's."""
    member = tarfile.TarInfo(name)
    member.type, member.linkname = kind, "t"
    member.size = size if kind == tarfile.REGTYPE else 0
    formats = {"ustar": tarfile.USTAR_FORMAT, "gnu": tarfile.GNU_FORMAT}
    try:
        if form in formats:
            raw = member.tobuf(formats[form], "utf-8", "surrogateescape")  # type: ignore[arg-type]
        else:
            raw = member.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    except ValueError:  # a name this format cannot hold
        return
    raw += bytes(member.size + -member.size % 512)
    ours, theirs = _members(raw, TarInfo), _members(raw, tarfile.TarInfo)
    assert [m.get_info() for m in ours] == [m.get_info() for m in theirs]


@given(st.binary(min_size=512, max_size=512))
def test_bad_headers_fail_as_tarfile_fails(buf: bytes) -> None:
    """Any 512 bytes: the same member, or the same error, as tarfile's own decoding."""
    outcomes: list[object] = []
    for cls in (TarInfo, tarfile.TarInfo):
        try:
            outcomes.append(cls.frombuf(buf, "utf-8", "replace").get_info())
        except tarfile.HeaderError as exc:
            outcomes.append(type(exc).__name__)
    assert outcomes[0] == outcomes[1]


def test_a_damaged_checksum_is_refused() -> None:
    raw = bytearray(tarfile.TarInfo("x").tobuf())
    raw[0] ^= 1  # the name changes, the recorded checksum does not
    with pytest.raises(tarfile.HeaderError, match="bad checksum"):
        TarInfo.frombuf(bytes(raw), "utf-8", "replace")


def _members(raw: bytes, cls: type[tarfile.TarInfo]) -> list[tarfile.TarInfo]:
    data = raw + bytes(1024)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:", tarinfo=cls) as archive:
        return archive.getmembers()
