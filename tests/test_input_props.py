"""Property-based tests of the parsers that read what indexes, archives and registries send:
any input gives a value or the parser's one documented error, never another exception."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import zipfile
from typing import Any
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packaging.utils import canonicalize_name

from reprolock import bounded
from reprolock.apt.index import parse_packages, parse_release, parse_status
from reprolock.bounded import Decompressor, read_capped
from reprolock.errors import ReprolockError, SourceError
from reprolock.model.deb822 import stanzas
from reprolock.resolve.python import metadata as core_metadata
from reprolock.resolve.python import pages, wheelzip
from reprolock.resolve.python.metadata import check_identity, parse_metadata

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
JSON = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=30,
)
FILE_KEYS = st.sampled_from(
    [
        "filename",
        "url",
        "hashes",
        "size",
        "yanked",
        "requires-python",
        "core-metadata",
        "upload-time",
        "data-dist-info-metadata",
    ]
)
FILE_ENTRY = st.dictionaries(FILE_KEYS, JSON | st.just("demo-1.0-py3-none-any.whl"), max_size=9)
PAGE = st.fixed_dictionaries({"files": st.lists(FILE_ENTRY, max_size=4)}) | JSON


def _keep(_name: str) -> bool:
    return True


@given(PAGE)
def test_json_pages_give_files_or_a_page_error(document: Any) -> None:
    body = json.dumps(document).encode()
    try:
        files = pages.parse_page(
            body, pages.JSON_TYPE, page_url="https://i/simple/demo/", index="https://i", keep=_keep
        )
    except pages.PageError:
        return
    for file in files:
        assert "/" not in file.filename and file.filename not in (".", "..")
        assert file.url.startswith(("https://", "http://"))
        assert file.sha256 is None or (len(file.sha256) == 64 and file.sha256.isalnum())


@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_any_bytes_as_a_page(body: bytes) -> None:
    for kind in (pages.JSON_TYPE, "text/html"):
        with contextlib.suppress(pages.PageError):
            pages.parse_page(
                body, kind, page_url="https://i/simple/demo/", index="https://i", keep=_keep
            )


ANCHOR = st.builds(
    lambda href, text, attrs: f'<a href="{href}" {attrs}>{text}</a>',
    st.text(max_size=30),
    st.text(max_size=30),
    st.text(max_size=40),
)


@given(st.lists(ANCHOR | st.text(max_size=30), max_size=6))
def test_html_pages(parts: list[str]) -> None:
    body = ("<html><body>" + "".join(parts)).encode()
    try:
        files = pages.parse_page(
            body, "text/html", page_url="https://i/simple/demo/", index="https://i", keep=_keep
        )
    except pages.PageError:
        return
    for file in files:
        assert "/" not in file.filename
        assert file.url.startswith(("https://", "http://"))


METADATA_LINE = st.sampled_from(
    ["Name", "Version", "Requires-Dist", "Requires-Python", "Provides-Extra", "X"]
).flatmap(lambda key: st.text(max_size=30).map(lambda v: f"{key}: {v}"))


@given(st.lists(METADATA_LINE, max_size=8) | st.binary(max_size=200).map(lambda b: [b.hex()]))
def test_metadata_gives_a_value_or_a_source_error(lines: list[str]) -> None:
    data = "\n".join(lines).encode("utf-8", "surrogateescape")
    metadata = parse_metadata(data)
    with contextlib.suppress(SourceError):
        check_identity(metadata, "demo-1.0-py3-none-any.whl", "https://i")


@given(st.binary(max_size=300))
def test_any_bytes_as_metadata(data: bytes) -> None:
    metadata = parse_metadata(data)
    with pytest.raises(ReprolockError):
        check_identity(metadata, "not-a-wheel-name", "https://i")


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@given(
    st.dictionaries(
        st.sampled_from(["demo-1.0.dist-info/METADATA", "demo/__init__.py", "x"]),
        st.binary(max_size=64),
        max_size=3,
    ),
    st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=6),
    st.integers(0, 40),
)
def test_remote_zip_members_from_damaged_archives(
    members: dict[str, bytes], flips: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(_zip(members))
    for position, value in flips:
        if position < len(data):
            data[position] = value
    data = data[cut:]
    blob = bytes(data)

    def fetch(start: int, end: int) -> bytes:
        return blob[start:end]

    with contextlib.suppress(wheelzip.ZipProblem, wheelzip.MemberTooLarge):
        wheelzip.read_member(len(blob), blob[-64:], fetch, wheelzip.is_metadata)


DEB_FIELD = st.sampled_from(
    [
        "Package",
        "Version",
        "Architecture",
        "Depends",
        "Provides",
        "Filename",
        "SHA256",
        "Size",
        "Status",
        "Pre-Depends",
        "Breaks",
        "Conflicts",
        "Multi-Arch",
        "SHA256",
        "Suite",
        "Valid-Until",
        "Acquire-By-Hash",
    ]
).flatmap(lambda key: st.text(max_size=40).map(lambda v: f"{key}: {v}"))
DEB_TEXT = st.lists(DEB_FIELD | st.just("") | st.text(max_size=20), max_size=12).map("\n".join)


@given(DEB_TEXT)
def test_apt_index_parsers_never_raise(text: str) -> None:
    list(stanzas(text))
    parse_release(text)
    for candidate in parse_packages(text, arch="amd64", archive="http://a", suite="s"):
        assert ".." not in candidate.url.split("/")
        assert len(candidate.sha256) == 64
    parse_status(text, arch="amd64")


@given(st.binary(max_size=300), st.sampled_from(["gzip", "xz", "zstd", "plain"]))
def test_decompressors_give_bytes_or_a_source_error(data: bytes, kind: Any) -> None:
    stream = Decompressor(
        io.BytesIO(data), kind, what="x", max_output=1 << 20, limit_name="apt_index_bytes"
    )
    with contextlib.suppress(SourceError):
        read_capped(stream, 1 << 20, "x", "apt_index_bytes")


HEADER_NAMES = st.sampled_from(
    [
        *("Name", "name", "Version", "Requires-Dist", "REQUIRES-DIST", "Requires-Python"),
        *("Provides-Extra", "Summary", "License", "From", "X Y", ""),
    ]
)
HEADER_TEXT = st.text(
    alphabet=st.sampled_from([*"ab >=<;'\"_-.,:[]()!", "\u00e9", "\x0b", "\x1c", "\t"]),
    max_size=24,
)
FIELD = st.tuples(HEADER_NAMES, st.sampled_from([":", ": ", ":\t", " :"]), HEADER_TEXT).map("".join)
HEADER_LINE = st.one_of(
    FIELD,
    FIELD,
    FIELD,
    st.tuples(st.sampled_from([" ", "\t", "  "]), HEADER_TEXT).map("".join),  # folded
    st.just(""),
    HEADER_TEXT,
)


@given(
    st.lists(HEADER_LINE, max_size=10),
    st.sampled_from(["\n", "\r\n", "\r"]),
    st.binary(max_size=16),
)
def test_metadata_headers_read_as_the_email_parser_reads_them(
    lines: list[str], end: str, tail: bytes
) -> None:
    data = end.join(lines).encode("utf-8") + tail
    fast = core_metadata._fields(data.decode("ascii", "surrogateescape"))
    if fast is not None:  # None: the email parser is asked instead
        assert {k: v for k, v in fast.items() if v} == core_metadata._email_fields(data)


REQUIREMENT_LINE = st.tuples(
    st.sampled_from(["a", "b>=1", "c[x]<2", "d @ https://h/p;extra=='x'", "e;", "f ==="]),
    st.sampled_from(
        [
            *("", "; extra == 'x'", ';extra=="X_y"', "; extra == 'x' or python_version < '3'"),
            *("; python_version >= '3.8'", "; extra != 'x'", " ; 'x' == extra", "; extra == ''"),
            *("; extra == 'x'; extra == 'y'", "; sys_platform == 'win32' and extra == 'x-y'"),
        ]
    ),
).map("".join)


@given(st.lists(REQUIREMENT_LINE, max_size=6), st.sampled_from([None, "x", "x-y", "y"]))
def test_applying_requirements_is_what_evaluating_every_marker_gives(
    lines: list[str], extra: str | None
) -> None:
    body = "".join(f"Requires-Dist: {line}\n" for line in lines)
    metadata = parse_metadata(f"Name: demo\nVersion: 1\n{body}\n".encode())
    env = {"python_version": "3.11", "sys_platform": "linux", "python_full_version": "3.11.0"}
    base = {**env, "extra": ""}
    if extra is None:
        expected = tuple(
            r for r in metadata.requires_dist if r.marker is None or r.marker.evaluate(base)
        )
    else:
        with_extra = {**env, "extra": extra}
        expected = tuple(
            r
            for r in metadata.requires_dist
            if r.marker is not None
            and r.marker.evaluate(with_extra)
            and not r.marker.evaluate(base)
        )
    extra_name = None if extra is None else canonicalize_name(extra)
    assert core_metadata.applying(metadata, env, extra_name) == expected


GZIP_INPUT = st.one_of(
    st.binary(max_size=300),
    st.lists(st.binary(max_size=3000), min_size=1, max_size=3).map(
        lambda parts: b"".join(gzip.compress(p, mtime=0) for p in parts)  # members, as pigz
    ),
    st.tuples(st.binary(min_size=1, max_size=3000), st.integers(1, 40)).map(
        lambda t: gzip.compress(t[0], mtime=0)[: -t[1]]  # truncated
    ),
    st.tuples(st.binary(max_size=3000), st.binary(min_size=1, max_size=20)).map(
        lambda t: gzip.compress(t[0], mtime=0) + t[1]  # something after the last member
    ),
    st.tuples(st.binary(min_size=1, max_size=3000), st.integers(0, 10**6), st.integers(1, 255)).map(
        lambda t: _flip(gzip.compress(t[0], mtime=0), t[1], t[2])  # a damaged byte
    ),
)


def _flip(data: bytes, at: int, mask: int) -> bytes:
    at %= len(data)
    return data[:at] + bytes([data[at] ^ mask]) + data[at + 1 :]


@pytest.mark.skipif(bounded._ISAL_GZIP is None, reason="python-isal is not installed")
@given(GZIP_INPUT, st.sampled_from([1, 7, 512, 1 << 20]))
def test_gzip_reads_the_same_with_zlib_and_with_isal(data: bytes, size: int) -> None:
    # bounded inflates gzip with ISA-L where python-isal is installed, zlib otherwise: the
    # same bytes, or a SourceError for both, however small the reads.
    def read(isal: Any) -> bytes | None:
        with mock.patch.object(bounded, "_ISAL_GZIP", isal):
            stream = Decompressor(
                io.BytesIO(data), "gzip", what="x", max_output=1 << 20, limit_name="apt_index_bytes"
            )
            parts = []
            try:
                while part := stream.read(size):
                    assert len(part) <= size
                    parts.append(part)
            except SourceError:
                return None
            return b"".join(parts)

    assert read(bounded._ISAL_GZIP) == read(None)
