"""The remote zip reader against the standard library's `zipfile`: every archive zipfile
writes (ZIP64, stored or deflated, UTF-8 names, comments, data prepended) reads the
same, by range requests, and a damaged member is refused."""

from __future__ import annotations

import io
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reprolock import limits
from reprolock.resolve.python import wheelzip

NAMES = st.sampled_from(
    [
        "pkg/__init__.py",
        "pkg/módulo.py",
        "pkg/data/blob.bin",
        "pkg-1.0.dist-info/METADATA",
        "pkg-1.0.dist-info/WHEEL",
        "pkg-1.0.dist-info/RECORD",
        "other/pkg-1.0.dist-info/METADATA",
        "pkg.libs/libx-abc.so",
    ]
)
MEMBERS = st.dictionaries(NAMES, st.binary(max_size=3000), min_size=1, max_size=8)


def _archive(
    members: dict[str, bytes],
    *,
    deflate: bool = False,
    zip64: bool = False,
    comment: bytes = b"",
    prepend: bytes = b"",
) -> bytes:
    buffer = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, data in members.items():
            with archive.open(name, "w", force_zip64=zip64) as member:
                member.write(data)
        archive.comment = comment
    return prepend + buffer.getvalue()


def _remote(data: bytes, tail: int) -> tuple[bytes, wheelzip.Fetch, list[tuple[int, int]]]:
    calls: list[tuple[int, int]] = []

    def fetch(start: int, end: int) -> bytes:
        assert 0 <= start <= end <= len(data)
        calls.append((start, end))
        return data[start:end]

    return data[-tail:] if tail else b"", fetch, calls


@settings(max_examples=150, deadline=None)
@given(
    members=MEMBERS,
    deflate=st.booleans(),
    zip64=st.booleans(),
    comment=st.sampled_from([b"", b"a comment", b"x" * 70_000]),
    prepend=st.sampled_from([b"", b"#!/bin/sh\nexit 0\n"]),
    tail=st.sampled_from([0, 64, 4096, 65536]),
)
def test_reads_what_zipfile_reads(
    members: dict[str, bytes], deflate: bool, zip64: bool, comment: bytes, prepend: bytes, tail: int
) -> None:
    data = _archive(members, deflate=deflate, zip64=zip64, comment=comment[:65535], prepend=prepend)
    reference = zipfile.ZipFile(io.BytesIO(data))
    infos = reference.infolist()
    tail_bytes, fetch, _calls = _remote(data, tail)
    listed = wheelzip.members(len(data), tail_bytes, fetch)
    assert listed == [
        (i.filename, i.header_offset, i.compress_size, i.file_size, i.compress_type) for i in infos
    ]
    wanted = next((i for i in infos if wheelzip.is_metadata(i.filename)), None)
    got = wheelzip.read_member(len(data), tail_bytes, fetch, wheelzip.is_metadata)
    assert got == (reference.read(wanted) if wanted is not None else None)
    suffix = wheelzip.METADATA_SUFFIX
    assert (
        wheelzip.read_member(len(data), tail_bytes, fetch, wheelzip.is_metadata, suffix=suffix)
        == got
    )


def test_an_end_record_lookalike_in_the_comment_is_passed_over() -> None:
    # (zipfile itself takes the lookalike and fails)
    data = _archive(
        {"pkg-1.0.dist-info/METADATA": b"Name: pkg\n"},
        deflate=True,
        comment=b"PK\x05\x06 lookalike",
    )
    tail, fetch, _calls = _remote(data, 65536)
    assert wheelzip.read_member(len(data), tail, fetch, wheelzip.is_metadata) == b"Name: pkg\n"


def test_a_wheel_whose_directory_is_in_the_tail_costs_no_request() -> None:
    data = _archive({"pkg/a.py": b"x" * 100_000, "pkg-1.0.dist-info/METADATA": b"Name: pkg\n"})
    tail, fetch, calls = _remote(data, 65536)
    assert wheelzip.read_member(len(data), tail, fetch, wheelzip.is_metadata) == b"Name: pkg\n"
    assert calls == []


def test_a_large_directory_beyond_the_tail_is_read_in_one_request() -> None:
    members = {f"pkg/m{i:05}.py": b"" for i in range(4000)}
    members["pkg-1.0.dist-info/METADATA"] = b"Name: pkg\n"
    data = _archive(members, deflate=True)
    tail, fetch, calls = _remote(data, 4096)
    assert wheelzip.read_member(len(data), tail, fetch, wheelzip.is_metadata) == b"Name: pkg\n"
    assert len(calls) == 2  # the directory, then the member (near its start)


def _corrupt(data: bytes, old: bytes, new: bytes) -> bytes:
    at = data.rindex(old)
    return data[:at] + new + data[at + len(old) :]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: _corrupt(d, b"Name: pkg", b"Name: pkh"), "CRC"),
        (lambda d: _corrupt(d, b"PK\x03\x04", b"PK\x03\x05"), "file header"),
        (lambda d: _corrupt(d, b"PK\x01\x02", b"PK\x01\x03"), "central directory"),
        (lambda d: d[:-30], "not a zip file"),
    ],
)
def test_damage_is_a_zip_problem(damage: object, message: str) -> None:
    data = _archive({"pkg-1.0.dist-info/METADATA": b"Name: pkg\n"})
    broken = damage(data)  # type: ignore[operator]
    tail, fetch, _calls = _remote(broken, 65536)
    with pytest.raises(wheelzip.ZipProblem, match=message):
        wheelzip.read_member(len(broken), tail, fetch, wheelzip.is_metadata)


def test_a_member_larger_than_the_cap_is_refused_before_it_is_read() -> None:
    data = _archive({"pkg-1.0.dist-info/METADATA": b"a" * 5_000_000}, deflate=True)
    tail, fetch, calls = _remote(data, 65536)
    limits.install(limits.Limits(metadata_bytes=1_000_000))
    try:
        with pytest.raises(wheelzip.MemberTooLarge):
            wheelzip.read_member(len(data), tail, fetch, wheelzip.is_metadata)
    finally:
        limits.install(limits.DEFAULT)
    assert calls == []


def test_a_directory_larger_than_its_bound_is_refused_unread() -> None:
    members = {f"pkg/m{i:05}.py": b"" for i in range(3000)}
    data = _archive(members)
    tail, fetch, calls = _remote(data, 4096)
    limits.install(limits.Limits(metadata_bytes=10_000))  # a directory bound of 40,000 bytes
    try:
        with pytest.raises(wheelzip.ZipProblem, match="central directory claims"):
            wheelzip.read_member(len(data), tail, fetch, wheelzip.is_metadata)
    finally:
        limits.install(limits.DEFAULT)
    assert calls == []


def test_a_listing_beyond_the_members_limit_is_refused() -> None:
    data = _archive({f"pkg/m{i}.py": b"" for i in range(20)})
    tail, fetch, _calls = _remote(data, 65536)
    assert len(wheelzip.members(len(data), tail, fetch)) == 20
    limits.install(limits.Limits(archive_members=10))
    try:
        with pytest.raises(wheelzip.ZipProblem, match="more than 10 members"):
            wheelzip.members(len(data), tail, fetch)
    finally:
        limits.install(limits.DEFAULT)
