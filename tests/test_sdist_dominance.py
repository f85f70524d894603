"""Dropping dominated sdists from a page changes no selection (and so no lock)."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.utils import canonicalize_name

from reprolock.model import Platform, PythonVersion
from reprolock.resolve.python.index import DistFile
from reprolock.resolve.python.select import (
    select_core,
    select_releases,
    version_of,
    without_dominated_sdists,
)
from reprolock.resolve.python.target import PythonTarget, wheel_filter

NAME = canonicalize_name("pkg")
T311 = PythonTarget(python=PythonVersion.parse("3.11"), platform=Platform.parse("linux/amd64"))
T312 = PythonTarget(python=PythonVersion.parse("3.12"), platform=Platform.parse("linux/arm64"))
EARLY, LATE = "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"


def _file(filename: str, *, sha: str | None = "a" * 64, **kw: object) -> DistFile:
    return DistFile(
        filename=filename,
        url=f"https://x/{filename}",
        index="https://x",
        sha256=sha,
        **kw,  # type: ignore[arg-type]
    )


def _kept(files: list[DistFile], *targets: PythonTarget) -> list[str]:
    everywhere = wheel_filter(targets or (T311,)).everywhere
    return [f.filename for f in without_dominated_sdists(NAME, files, everywhere)]


def test_an_sdist_beside_a_universal_wheel_is_dropped() -> None:
    files = [
        _file("pkg-1.0-py3-none-any.whl", upload_time_text=EARLY, requires_python=">=3.9"),
        _file("pkg-1.0.tar.gz", upload_time_text=EARLY, requires_python=">=3.9"),
        _file("pkg-2.0.tar.gz", upload_time_text=EARLY),  # no wheel at all: kept
    ]
    assert _kept(files) == ["pkg-1.0-py3-none-any.whl", "pkg-2.0.tar.gz"]


def test_an_sdist_is_kept_wherever_it_could_be_chosen() -> None:
    sdist = _file("pkg-1.0.tar.gz", upload_time_text=EARLY, requires_python=">=3.9")
    wheel = {"upload_time_text": EARLY, "requires_python": ">=3.9"}
    cases = {
        "a later wheel (exclude-newer may admit the sdist only)": [
            _file("pkg-1.0-py3-none-any.whl", **{**wheel, "upload_time_text": LATE})
        ],
        "another Requires-Python": [
            _file("pkg-1.0-py3-none-any.whl", **{**wheel, "requires_python": ">=3.12"})
        ],
        "a yanked wheel": [_file("pkg-1.0-py3-none-any.whl", yanked="", **wheel)],
        "an unhashed wheel": [_file("pkg-1.0-py3-none-any.whl", sha=None, **wheel)],
        "no upload time": [
            _file("pkg-1.0-py3-none-any.whl", **{**wheel, "upload_time_text": None})
        ],
        "a time without a zone, which is UTC": [
            _file("pkg-1.0-py3-none-any.whl", **{**wheel, "upload_time_text": "2024-01-01T01:00"})
        ],
        "another project's wheel": [_file("other-1.0-py3-none-any.whl", **wheel)],
        "a wheel for one target of two": [
            _file("pkg-1.0-cp311-cp311-manylinux_2_17_x86_64.whl", **wheel)
        ],
    }
    for why, wheels in cases.items():
        assert "pkg-1.0.tar.gz" in _kept([*wheels, sdist], T311, T312), why


def test_an_upload_time_without_a_zone_is_utc() -> None:
    """PEP 700 times are UTC; one written without a zone must still compare with
    exclude-newer (it raised TypeError, a traceback, before)."""
    files = [_file("pkg-1.0-py3-none-any.whl", upload_time_text="2024-01-01T07:00")]
    cutoff = dt.datetime(2024, 1, 1, 6, tzinfo=dt.UTC)
    core = select_core(NAME, files, T311, exclude_newer=cutoff)
    assert not core.releases
    reason = core.rejected[0][1]
    assert reason == "uploaded 2024-01-01 07:00Z, after exclude-newer 2024-01-01 06:00Z"


def test_a_wheel_for_every_target_dominates_across_targets() -> None:
    files = [
        _file("pkg-1.0-cp311-cp311-manylinux_2_17_x86_64.whl", upload_time_text=EARLY),
        _file("pkg-1.0.tar.gz", upload_time_text=LATE),
    ]
    assert _kept(files, T311) == ["pkg-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"]
    assert "pkg-1.0.tar.gz" in _kept(files, T311, T312)  # no wheel for 3.12/arm64


def test_equal_versions_written_differently_are_the_same_release() -> None:
    files = [
        _file("pkg-1.0.0-py2.py3-none-any.whl", upload_time_text=EARLY),
        _file("pkg-1.0.zip", upload_time_text=EARLY),
    ]
    assert _kept(files) == ["pkg-1.0.0-py2.py3-none-any.whl"]


_TAGS = [
    "py3-none-any",
    "py2.py3-none-any",
    "cp311-cp311-manylinux_2_17_x86_64",
    "cp312-cp312-manylinux_2_28_aarch64",
    "cp311-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64",
]
_TIMES = [None, EARLY, LATE, "2024-01-01T12:00:00+00:00", "2024-01-01T00:00"]
_PYTHONS = [None, ">=3.9", ">=3.12", ">=3.11.5"]


@st.composite
def _pages(draw: st.DrawFn) -> list[DistFile]:
    files = []
    for version in draw(st.lists(st.sampled_from(["1.0", "1.0.0", "2.0", "3.0rc1"]), max_size=4)):
        common = {"requires_python": draw(st.sampled_from(_PYTHONS))}
        for tags in draw(st.lists(st.sampled_from(_TAGS), max_size=3, unique=True)):
            files.append(
                _file(
                    f"pkg-{version}-{tags}.whl",
                    sha=draw(st.sampled_from(["a" * 64, None])),
                    yanked=draw(st.sampled_from([None, None, "", "bad"])),
                    upload_time_text=draw(st.sampled_from(_TIMES)),
                    requires_python=draw(st.sampled_from([common["requires_python"], *_PYTHONS])),
                )
            )
        for suffix in draw(st.lists(st.sampled_from([".tar.gz", ".zip"]), max_size=2, unique=True)):
            files.append(
                _file(
                    f"pkg-{version}{suffix}",
                    sha=draw(st.sampled_from(["b" * 64, None])),
                    yanked=draw(st.sampled_from([None, None, ""])),
                    upload_time_text=draw(st.sampled_from(_TIMES)),
                    requires_python=draw(st.sampled_from([common["requires_python"], *_PYTHONS])),
                )
            )
    return draw(st.permutations(files))


def _summary(files: list[DistFile], target: PythonTarget, cutoff: dt.datetime | None) -> object:
    hashed = [f for f in files if f.sha256 or not f.is_wheel]
    core = select_core(NAME, hashed, target, exclude_newer=cutoff, build=True)
    first: dict[object, str] = {}
    for version, reason, _kind in core.rejected:
        first.setdefault(version, reason)
    chosen = [(r.version, r.wheel.filename, r.yanked) for r in core.releases]
    return chosen, {v: r for v, r in first.items() if v not in {c[0] for c in chosen}}


@settings(max_examples=300, deadline=None)
@given(
    _pages(),
    st.sampled_from([(T311,), (T312,), (T311, T312)]),
    st.sampled_from([None, dt.datetime(2024, 1, 1, 6, tzinfo=dt.UTC)]),
)
def test_dropping_dominated_sdists_changes_no_selection(
    files: list[DistFile], targets: tuple[PythonTarget, ...], cutoff: dt.datetime | None
) -> None:
    kept = without_dominated_sdists(NAME, files, wheel_filter(targets).everywhere)
    for target in targets:
        assert _summary(kept, target, cutoff) == _summary(files, target, cutoff)


_OTHERS = st.lists(
    st.sampled_from(
        [
            "pkg-9.0-cp39-cp39-win_amd64.whl",
            "pkg-10.0-1-cp39-cp39-macosx_11_0_arm64.whl",  # a build tag
            "pkg-1.0.0-cp39-cp39-win32.whl",
            "pkg-bad-version-py3-none-win32.whl",
            "pkg-11.0.whl",  # too few parts: not a wheel name
            "pkg-12.0-a-b-c-d-e.whl",  # too many
            "pkg-13.0.tar.gz",
            "pkg-14.0.zip",
            "pkg-15.0.exe",
        ]
    ),
    max_size=6,
)


@settings(max_examples=200, deadline=None)
@given(_pages(), _OTHERS)
def test_the_newest_listed_version_counts_every_file(
    files: list[DistFile], others: list[str]
) -> None:
    selection = select_releases(NAME, files, T311, other_files=others, build=True)
    listed = [f.filename for f in files] + others
    versions = []
    for filename in listed:
        if filename.endswith(".whl"):
            parts = filename[:-4].split("-")
            text = parts[1] if len(parts) in (5, 6) else None
        elif filename.endswith((".tar.gz", ".zip")):
            text = filename.removesuffix(".tar.gz").removesuffix(".zip").rpartition("-")[2]
        else:
            text = None
        version = version_of(text) if text else None
        if version is not None:
            versions.append(version)
    assert selection.newest_listed() == max(versions, default=None)


def test_the_filter_key_tells_targets_apart_not_only_their_tags() -> None:
    """Two targets whose tags together equal one target's keep other sdists: a page's
    summary made for one must not be found for the other."""
    old_glibc = PythonTarget(
        python=PythonVersion.parse("3.11"), platform=Platform.parse("linux/amd64"), glibc=(2, 17)
    )
    one = wheel_filter([T311])
    two = wheel_filter([T311, old_glibc])
    assert one.tags == two.tags
    assert one.key != two.key
    assert one.everywhere("cp311-cp311-manylinux_2_28_x86_64")
    assert not two.everywhere("cp311-cp311-manylinux_2_28_x86_64")
