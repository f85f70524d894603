"""Pure parts of the Python layer: page parsers, target tags, zip member reads, metadata."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.tags import Tag
from packaging.utils import canonicalize_name
from packaging.version import Version

from reprolock.model import Platform, PythonVersion
from reprolock.resolve.python import page_summary, wheelzip
from reprolock.resolve.python.finder import Fetcher, Finder
from reprolock.resolve.python.index import DistFile
from reprolock.resolve.python.metadata import parse_metadata
from reprolock.resolve.python.pages import (
    JSON_TYPE,
    PageError,
    parse_html_page,
    parse_json_page,
    parse_page,
)
from reprolock.resolve.python.select import CoreSelection, select_releases
from reprolock.resolve.python.target import PythonTarget, wheel_filter


def _keep(_: str) -> bool:
    return True


def test_json_page() -> None:
    body = json.dumps(
        {
            "meta": {"api-version": "1.1"},
            "name": "x",
            "files": [
                {
                    "filename": "x-1.0-py3-none-any.whl",
                    "url": "../../f/x-1.0-py3-none-any.whl",
                    "hashes": {"sha256": "ab" * 32},
                    "requires-python": ">=3.8",
                    "yanked": "broken",
                    "upload-time": "2024-05-01T10:00:00.123456Z",
                    "size": 10,
                    "core-metadata": {"sha256": "cd" * 32},
                },
                {
                    "filename": "x-1.0.tar.gz",
                    "url": "https://other/x-1.0.tar.gz",
                    "hashes": {},
                    "yanked": False,
                    "data-dist-info-metadata": True,
                },
            ],
        }
    ).encode()
    first, second = parse_json_page(
        body, page_url="https://idx/simple/x/", index="https://idx/simple", keep=_keep
    )
    assert first.url == "https://idx/f/x-1.0-py3-none-any.whl"
    assert first.sha256 == "ab" * 32
    assert first.yanked == "broken"
    assert first.metadata == "cd" * 32
    assert first.upload_time is not None and first.upload_time.year == 2024
    assert second.sha256 is None and second.yanked is None and second.metadata is True


def test_html_page() -> None:
    whl1, whl2 = "x-1.0-py3-none-any.whl", "x-2.0-py3-none-any.whl"
    body = (
        '<html><head><base href="https://files.example/"></head><body>\n'
        f'<a href="p/{whl1}#sha256=ABAB" data-requires-python="&gt;=3.8">{whl1}</a>\n'
        f'<a href="p/{whl2}#sha256={"ef" * 32}" data-yanked=""\n'
        f'   data-core-metadata="sha256={"12" * 32}">{whl2}</a>\n'
        '<a href="/elsewhere">not a file</a></body></html>'
    ).encode()
    files = parse_html_page(
        body, page_url="https://idx/simple/x/", index="i", keep=lambda n: n.endswith(".whl")
    )
    assert [f.filename for f in files] == ["x-1.0-py3-none-any.whl", "x-2.0-py3-none-any.whl"]
    assert files[0].url == "https://files.example/p/x-1.0-py3-none-any.whl"
    assert files[0].sha256 is None  # "ABAB" is not a sha256
    assert files[0].requires_python == ">=3.8"
    assert files[1].sha256 == "ef" * 32
    assert files[1].yanked == ""
    assert files[1].metadata == "12" * 32


def test_page_dispatch_on_media_type() -> None:
    body = b'{"files": []}'
    assert (
        parse_page(body, "application/vnd.pypi.simple.v1+json", page_url="u", index="i", keep=_keep)
        == []
    )
    assert (
        parse_page(
            b"<html></html>", "text/html; charset=utf-8", page_url="u", index="i", keep=_keep
        )
        == []
    )


def test_target_tags_follow_the_target() -> None:
    arm = PythonTarget(python=PythonVersion.parse("3.11"), platform=Platform.parse("linux/arm64"))
    priority = arm.tag_priority
    assert Tag("cp311", "cp311", "manylinux_2_17_aarch64") in priority
    assert Tag("cp311", "cp311", "manylinux2014_aarch64") in priority
    assert Tag("cp311", "cp311", "manylinux_2_17_x86_64") not in priority
    assert Tag("cp311", "cp311", "manylinux_2_31_aarch64") not in priority  # glibc 2.28
    assert Tag("cp312", "cp312", "manylinux_2_17_aarch64") not in priority
    assert Tag("py3", "none", "any") in priority
    assert (
        priority[Tag("cp311", "cp311", "manylinux_2_28_aarch64")]
        < priority[Tag("cp311", "abi3", "manylinux_2_28_aarch64")]
        < priority[Tag("py3", "none", "any")]
    )
    amd = PythonTarget(
        python=PythonVersion.parse("3.12.4"), platform=Platform.parse("amd64"), glibc=(2, 35)
    )
    assert Tag("cp312", "cp312", "manylinux_2_35_x86_64") in amd.tag_priority
    assert Tag("cp312", "cp312", "manylinux1_x86_64") in amd.tag_priority
    assert amd.marker_environment()["python_full_version"] == "3.12.4"
    assert amd.marker_environment()["platform_machine"] == "x86_64"


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_read_member_with_few_ranges() -> None:
    blob = bytes(range(256)) * 40_000  # ~10 MB, incompressible enough
    data = _zip({"x/blob.bin": blob, "x-1.0.dist-info/METADATA": b"Name: x\n"})
    calls: list[tuple[int, int]] = []

    def fetch(start: int, end: int) -> bytes:
        calls.append((start, end))
        return data[start:end]

    tail = data[-65536:]
    member = wheelzip.read_member(len(data), tail, fetch, wheelzip.is_metadata)
    assert member == b"Name: x\n"
    assert len(calls) <= 1  # the central directory and this member sit in the tail


def test_read_member_far_from_the_tail() -> None:
    data = _zip(
        {
            "x-1.0.dist-info/METADATA": b"Name: x\n",
            **{f"x/{i}.bin": bytes([i % 256]) * 5000 + bytes(range(256)) * 300 for i in range(50)},
        }
    )
    fetched: list[tuple[int, int]] = []

    def fetch(start: int, end: int) -> bytes:
        fetched.append((start, end))
        return data[start:end]

    member = wheelzip.read_member(len(data), data[-4096:], fetch, wheelzip.is_metadata)
    assert member == b"Name: x\n"
    assert 1 <= len(fetched) <= 3


def test_metadata_parse() -> None:
    meta = parse_metadata(
        b"Metadata-Version: 2.1\nName: Foo_Bar\nVersion: 1.0\nRequires-Python: >=3.9\n"
        b"Requires-Dist: numpy>=1.26\nRequires-Dist: rich; extra == 'cli'\n"
        b"Requires-Dist: this is not valid!!\nProvides-Extra: CLI\n\nlong description\n"
    )
    assert meta.name == "foo-bar"
    assert [str(r) for r in meta.requires_dist] == ["numpy>=1.26", 'rich; extra == "cli"']
    assert meta.invalid == ("this is not valid!!",)
    assert meta.provides_extra == frozenset({"cli"})
    assert meta.requires_python == ">=3.9"


# -- page summaries, the wheel filter and shared selections -------------------------------------
SUMMARY_PAGE = {
    "meta": {"api-version": "1.1"},
    "files": [
        {
            "filename": "x-1.0-py3-none-any.whl",
            "url": "../../f/x-1.0-py3-none-any.whl",
            "hashes": {"sha256": "ab" * 32},
            "requires-python": ">=3.8",
            "yanked": "broken",
            "upload-time": "2024-05-01T10:00:00Z",
            "size": 10,
            "core-metadata": {"sha256": "cd" * 32},
        },
        {
            "filename": "x-1.1-py3-none-any.whl",
            "url": "https://files.example/x-1.1-py3-none-any.whl?x=1#frag",
            "hashes": {},
            "yanked": True,
            "data-dist-info-metadata": True,
        },
        {"filename": "x-1.2-py3-none-any.whl", "url": "/f/x-1.2-py3-none-any.whl", "hashes": {}},
        {"filename": "x-1.2.tar.gz", "url": "x-1.2.tar.gz", "hashes": {}},
        {"filename": "x-1.2-cp27-cp27m-win32.whl", "url": "x.whl", "hashes": {}},
    ],
}


def _kept(files: list[str]) -> Callable[[str], bool]:
    def keep(name: str) -> bool:
        if name.endswith(".whl") and "win32" not in name:
            return True
        files.append(name)
        return False

    return keep


@pytest.mark.parametrize(
    "page_url",
    ["https://idx/simple/x/", "https://someone:hunter2@idx/simple/x/"],
)
def test_page_summary_gives_back_what_the_page_gave(page_url: str) -> None:
    others: list[str] = []
    files = parse_json_page(
        json.dumps(SUMMARY_PAGE).encode(), page_url=page_url, index="i", keep=_kept(others)
    )
    assert len(files) == 3 and others == ["x-1.2.tar.gz", "x-1.2-cp27-cp27m-win32.whl"]
    summary = page_summary.dump_summary(files, others, page_url=page_url)
    assert summary is not None
    assert b"hunter2" not in summary  # the page URL's credentials are joined back on reading
    found, found_others = page_summary.load_summary(summary, page_url=page_url, index="i")
    assert found == files and list(found_others) == others
    assert "hunter2" in files[0].url or "hunter2" not in page_url


def test_page_summary_is_checked_as_a_page_is() -> None:
    good = page_summary.dump_summary([], ["x-1.0.tar.gz"], page_url="https://i/simple/x/")
    assert good is not None
    document = json.loads(good)
    broken: list[dict[str, Any]] = [
        {**document, "meta": {"reprolock-page-summary": page_summary.FORMAT + 1}},
        {**document, "others": ["x-1.0.tar.gz"]},  # a list: format 3
        {**document, "others": "../../etc/passwd"},
        {**document, "others": "x-1.0.tar.gz\n\nx-2.0.tar.gz"},  # an empty name
        {**document, "others": "x-1.0.tar.gz\n"},
        {**document, "others": "x-1.0.tar.gz\n.."},
        {**document, "others": "."},
        {**document, "others": "x-1.0 .tar.gz"},
        {**document, "others": "x\x00-1.0.tar.gz"},
        {**document, "others": "x" * 256},
        {**document, "others": 5},
        {**document, "other-versions": None},
        {**document, "other-versions": [5]},
        {**document, "other-versions": [""]},
        {**document, "other-versions": ["1.0/../.."]},
        {**document, "other-versions": ["1.0", "2.0"]},  # more versions than names
        {**document, "files": [{"filename": "x-1.0-py3-none-any.whl", "url": "file:///x"}]},
        {**document, "files": [{"filename": "x-1.0-py3-none-any.whl", "hashes": {"sha256": 5}}]},
    ]
    for case in broken:
        with pytest.raises(PageError):
            page_summary.load_summary(
                json.dumps(case).encode(), page_url="https://i/simple/x/", index="i"
            )
    with pytest.raises(PageError):
        page_summary.load_summary(b"[1", page_url="https://i/simple/x/", index="i")


def test_a_summary_keeps_the_other_files_version_texts() -> None:
    others = ["x-1.2-cp27-cp27m-win32.whl", "x-1.2-cp27-cp27m-win_amd64.whl", "x-0.9.zip"]
    summary = page_summary.dump_summary([], others, page_url="https://i/simple/x/")
    assert summary is not None
    files, found = page_summary.load_summary(summary, page_url="https://i/simple/x/", index="i")
    assert files == [] and found == others and list(found) == others and len(found) == 3
    assert found.versions == {"1.2", "0.9"}
    assert json.loads(summary)["other-versions"] == ["0.9", "1.2"]


def test_other_files_are_split_on_use_and_read_as_names() -> None:
    from reprolock.resolve.python.select import OtherFiles, listed_versions

    names = ["x-2.0-py3-none-win32.whl", "x-1.0.tar.gz", "x-1.0-py3-none-win32.whl"]
    other = OtherFiles.of(names)
    assert other.text == "\n".join(names) and bool(other)
    assert other[1] == "x-1.0.tar.gz" and other[-1] == names[-1] and other[:2] == tuple(names[:2])
    assert other.versions == listed_versions(names) == {"2.0", "1.0"}
    assert other == names and other == tuple(names) and other == OtherFiles.of(names)
    assert other != ["x-1.0.tar.gz"]
    empty = OtherFiles.of([])
    assert not empty and len(empty) == 0 and list(empty) == [] and empty.versions == frozenset()
    stored = OtherFiles("x-3.0.tar.gz", frozenset({"3.0"}))  # as a summary holds them
    assert stored.versions == {"3.0"} and list(stored) == ["x-3.0.tar.gz"]


def test_page_summary_is_not_written_when_a_url_would_carry_credentials() -> None:
    page_url = "https://someone:hunter2@idx/simple/x/"
    files = parse_json_page(
        json.dumps(
            {"files": [{"filename": "x-1.0-py3-none-any.whl", "url": "/.//evil/x.whl"}]}
        ).encode(),
        page_url=page_url,
        index="i",
        keep=_keep,
    )
    assert "hunter2" in files[0].url
    assert page_summary.dump_summary(files, [], page_url=page_url) is None


def test_summary_keys_name_the_page_body_and_the_filter() -> None:
    keys = {
        page_summary.summary_key(url, body, kind, kept)
        for url in ("https://i/simple/x/", "https://j/simple/x/")
        for body in ("ab" * 32, "cd" * 32)
        for kind in ("text/html", JSON_TYPE)
        for kept in ("all", "some")
    }
    assert len(keys) == 16


def test_wheel_filter_decides_by_the_tag_triple() -> None:
    amd = PythonTarget(python=PythonVersion.parse("3.11"), platform=Platform.parse("linux/amd64"))
    arm = PythonTarget(python=PythonVersion.parse("3.11"), platform=Platform.parse("linux/arm64"))
    accept = wheel_filter([amd])
    assert accept("x-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
    assert accept("x-1.0-1build-py2.py3-none-any.whl")  # a build tag, compressed tags
    assert not accept("x-1.0-cp311-cp311-manylinux_2_17_aarch64.whl")
    assert not accept("x-2.0-cp311-cp311-manylinux_2_17_aarch64.whl")  # remembered, same answer
    assert not accept("x-1.0-cp312-cp312-manylinux_2_17_x86_64.whl")
    assert accept("not-a-wheel-name.whl")  # selection judges malformed names
    assert accept("x-1.0-win_amd64.whl")  # malformed, even with another platform's tag
    assert accept("x-1.0-a-b-c-d-e.whl")
    both = wheel_filter([amd, arm])
    assert both("x-1.0-cp311-cp311-manylinux_2_17_aarch64.whl")
    assert len({accept.key, both.key, wheel_filter([arm]).key, wheel_filter([amd]).key}) == 3


class _Pages:
    """A `PythonIndex` of fixed files that counts page lookups."""

    def __init__(self, files: list[DistFile]) -> None:
        self.files = files
        self.lookups = 0

    def project_files(self, name: str) -> list[DistFile]:
        self.lookups += 1
        return self.files

    def metadata(self, file: DistFile) -> bytes:
        raise AssertionError("not asked")

    def other_files(self, name: str) -> list[str]:
        return ["x-0.9-cp27-cp27m-win32.whl", "x-0.8.tar.gz"]


def _dist(filename: str, **fields: Any) -> DistFile:
    return DistFile(
        filename=filename, url=f"https://f/{filename}", index="i", sha256="ab" * 32, **fields
    )


def test_targets_with_the_same_tags_share_one_selection_and_explain_on_demand() -> None:
    index = _Pages(
        [
            _dist("x-1.0-py3-none-any.whl"),
            _dist("x-1.1-py3-none-any.whl", requires_python=">=3.12"),
            _dist("x-1.2-cp311-cp311-manylinux_2_17_aarch64.whl"),
        ]
    )
    fetcher = Fetcher(index)
    try:
        target = PythonTarget(
            python=PythonVersion.parse("3.11"), platform=Platform.parse("linux/amd64")
        )
        twin = PythonTarget(
            python=PythonVersion.parse("3.11"), platform=Platform.parse("linux/amd64")
        )
        computed: list[object] = []
        original = fetcher.core_selection

        def counting(
            key: tuple[object, ...], compute: Callable[[], CoreSelection]
        ) -> CoreSelection:
            def once() -> CoreSelection:
                computed.append(key)
                return compute()

            return original(key, once)

        fetcher.core_selection = counting  # type: ignore[method-assign]
        first = Finder(fetcher, target, exclude_newer=None).selection(canonicalize_name("x"))
        second = Finder(fetcher, twin, exclude_newer=None).selection(canonicalize_name("x"))
        assert len(computed) == 1 and index.lookups == 1
        assert first is not second and first.releases == second.releases
        assert [str(r.version) for r in first.releases] == ["1.0"]
        assert first._pending is not None  # nothing explained until asked
        eager = select_releases(
            canonicalize_name("x"), index.files, target, other_files=index.other_files("x")
        )
        assert (
            first.rejected
            == eager.rejected
            == {
                Version("1.1"): ["requires Python >=3.12, the target is 3.11.0"],
                Version("1.2"): [
                    f"no wheel for {target}; has x-1.2-cp311-cp311-manylinux_2_17_aarch64.whl"
                ],
                Version("0.9"): [f"no wheel for {target}; has x-0.9-cp27-cp27m-win32.whl"],
                Version("0.8"): [
                    "only an sdist is published, and building it is refused "
                    "(python.sdists, no-build, only-build)"
                ],
            }
        )
    finally:
        fetcher.close()


_PART = st.text(alphabet="abz019._+!", min_size=0, max_size=6)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.builds(
            lambda parts, suffix: "-".join(parts) + suffix,
            st.lists(_PART, min_size=1, max_size=8),
            st.sampled_from([".whl", ".tar.gz", ".zip", ".egg", ""]),
        ),
        max_size=30,
    )
)
def test_listed_versions_reads_each_name_as_its_shape_says(names: list[str]) -> None:
    from reprolock.resolve.python.select import _version_text, listed_versions

    one_by_one = {t for n in names if (t := _version_text(n)) is not None}
    assert listed_versions(names) == one_by_one
    assert listed_versions(iter(names)) == one_by_one


_VERSIONS = st.builds(
    lambda epoch, release, pre, post, dev, local: Version(
        f"{f'{epoch}!' if epoch else ''}{'.'.join(map(str, release))}{pre}{post}{dev}{local}"
    ),
    st.sampled_from([0, 0, 0, 1]),
    st.lists(st.integers(0, 3), min_size=1, max_size=3),
    st.sampled_from(["", "", "a1", "b2", "rc1"]),
    st.sampled_from(["", "", ".post1"]),
    st.sampled_from(["", "", ".dev0"]),
    st.sampled_from(["", "", "+local", "+cu124"]),
)
_CLAUSES = st.builds(
    lambda operator, version, star: (
        f"{operator}{version.public}"
        if not star or operator not in ("==", "!=") or version.pre or version.post or version.dev
        else f"{operator}{'.'.join(map(str, version.release))}.*"
    ),
    st.sampled_from(["==", "!=", "<", "<=", ">", ">=", "~=", "==="]),
    _VERSIONS,
    st.booleans(),
)


@given(st.lists(_VERSIONS, max_size=30), st.lists(_CLAUSES, max_size=3))
@settings(max_examples=300, deadline=None)
def test_the_providers_bulk_filter_allows_what_contains_does(
    versions: list[Version], clauses: list[str]
) -> None:
    from types import SimpleNamespace

    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    from reprolock.resolve.python.provider import PythonProvider

    unique = list({v: v for v in versions}.values())  # a selection's versions are distinct
    try:
        specifier = SpecifierSet(",".join(c for c in clauses if not c.startswith("~=") or "." in c))
    except InvalidSpecifier:
        return
    releases = [SimpleNamespace(version=v) for v in unique]
    provider = SimpleNamespace(_allows={})
    found = PythonProvider._filter(provider, specifier, releases)  # type: ignore[arg-type]
    expected = [r for r in releases if specifier.contains(r.version, prereleases=True)]
    assert found == expected
    for release in releases:  # remembered for is_satisfied_by
        assert provider._allows[id(specifier)][1][id(release.version)][1] is (release in expected)
