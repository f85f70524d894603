"""No silent downgrades, honest errors, pre-releases: `reprolock lock` and `explain` against a
real loopback index of generated wheels and sdists. The specs refuse to build sdists
(``[python] sdists = "refuse"``), so that "only an sdist" is a reason a version is not usable;
with building allowed (the default) such versions are candidates (tests/test_sdist_*.py)."""

from __future__ import annotations

import datetime as dt
import json
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Run
from tests.pyindex import Index, IndexServer, build_sdist

LockCli = Callable[..., Run]
TARGET = "CPython 3.11.0 on linux/amd64 (glibc 2.28)"
HINT_NOT_FOUND = (
    "Check the spelling in [python] requirements, or add the index that has it "
    "([[python.index]]).\n"
)


def _spec(tmp_path: Path, server: IndexServer, requirements: list[str], extra: str = "") -> None:
    reqs = ", ".join(f'"{r}"' for r in requirements)
    (tmp_path / "reprolock.toml").write_text(
        f'[environment]\npython = "3.11"\nplatforms = ["linux/amd64"]\n\n'
        f"[python]\nrequirements = [{reqs}]\n"
        + ("" if "sdists" in extra else 'sdists = "refuse"\n')
        + extra
        + f'\n[[python.index]]\nname = "pypi"\nurl = "{server.url("pypi")}"\ndefault = true\n'
    )


def _lock(tmp_path: Path) -> dict[str, Any]:
    return tomllib.loads((tmp_path / "reprolock.lock").read_text())


def _pins(tmp_path: Path) -> dict[str, str]:
    return {p["name"]: p["version"] for p in _lock(tmp_path)["targets"][0].get("packages", [])}


def _warnings(run: Run) -> list[str]:
    return [line for line in run.err.splitlines() if line.startswith("warning: ")]


@pytest.fixture
def pypi(index_server: IndexServer, tmp_path: Path) -> Index:
    return index_server.add_index("pypi", tmp_path / "pypi")


def _hydra(pypi: Index, tmp_path: Path, *, direct: bool = True) -> None:
    """hydra-core as on PyPI: the 1.x releases need antlr4-python3-runtime 4.9, which has
    only an sdist; 0.11.3 predates it."""
    pypi.wheel("hydra-core", "0.11.3", requires=["omegaconf<1.5,>=1.4"])
    antlr = ["antlr4-python3-runtime==4.9.*"] if direct else []
    pypi.wheel("hydra-core", "1.3.8", requires=["omegaconf<2.4,>=2.2", *antlr])
    pypi.wheel("omegaconf", "1.4.1")
    pypi.wheel("omegaconf", "2.3.0", requires=["antlr4-python3-runtime==4.9.*"])
    pypi.add(build_sdist(tmp_path, "antlr4-python3-runtime", "4.9.3"))


def test_a_downgrade_for_an_sdist_only_dependency_is_said_and_recorded(
    lock_cli: LockCli, tmp_path: Path, index_server: IndexServer, pypi: Index
) -> None:
    _hydra(pypi, tmp_path)
    _spec(tmp_path, index_server, ["hydra-core"])
    run = lock_cli("lock")
    assert run.code == 0, run.err
    assert _pins(tmp_path) == {"hydra-core": "0.11.3", "omegaconf": "1.4.1"}
    line = (
        "py3.11-amd64: hydra-core 0.11.3 chosen; 1.3.8 needs antlr4-python3-runtime==4.9.*, "
        "which has only an sdist"
    )
    # omegaconf 1.4.1 is the newest hydra-core 0.11.3 allows: not a downgrade of its own
    assert _warnings(run) == [f"warning: {line}"]
    lock = _lock(tmp_path)
    assert lock["lock-version"] == "1.4"
    assert lock["targets"][0]["downgrades"] == [
        {
            "name": "hydra-core",
            "version": "0.11.3",
            "newest": "1.3.8",
            "reason": "needs antlr4-python3-runtime==4.9.*, which has only an sdist",
        }
    ]
    assert lock_cli("check").code == 0
    assert _warnings(lock_cli("lock")) == [f"warning: {line}"]  # up to date: said again
    as_json = json.loads(lock_cli("--format", "json", "lock", "--refresh").out)
    assert as_json["downgrades"] == {"py3.11-amd64": lock["targets"][0]["downgrades"]}
    # --strict-latest makes it an error, also when the lock is already up to date
    for args in ((), ("--refresh",)):
        strict = lock_cli("lock", "--strict-latest", "hydra-core", *args)
        assert strict.code == 3
        assert strict.err.endswith(
            f"error: --strict-latest: not locked at the newest version its requirements "
            f"allow: {line}.\nPublish a wheel of what the newer version needs on a "
            "[[python.index]], allow building its sdist ([python] sdists, no-build), or drop "
            "--strict-latest for it to accept the older version.\n"
        )
    assert lock_cli("lock", "--strict-latest", "omegaconf", "--refresh").code == 0
    # a name the lock does not hold (a typo) is bad input, not a silent pass
    typo = lock_cli("lock", "--strict-latest", "hydra_core", "--strict-latest", "hydracore")
    assert typo.code == 2
    assert typo.err == (
        "error: --strict-latest: hydracore is not a locked Python package of any target.\n"
        "Name a package the lock holds (see `reprolock explain NAME`), or drop the option "
        "for it.\n"
    )


def test_a_downgrade_two_levels_down(
    lock_cli: LockCli, tmp_path: Path, index_server: IndexServer, pypi: Index
) -> None:
    _hydra(pypi, tmp_path, direct=False)
    _spec(tmp_path, index_server, ["hydra-core"])
    run = lock_cli("lock")
    assert run.code == 0, run.err
    assert _warnings(run) == [
        "warning: py3.11-amd64: hydra-core 0.11.3 chosen; 1.3.8 needs omegaconf<2.4,>=2.2, "
        "whose 2.3.0 needs antlr4-python3-runtime==4.9.*, which has only an sdist"
    ]


@pytest.mark.parametrize(
    ("build", "requirement", "line"),
    [
        (
            {"requires_python": ">=3.12"},
            "modern",
            "modern 1.0 chosen; 2.0 requires Python >=3.12, the target is 3.11.0",
        ),
        (
            {"tag": "cp311-cp311-manylinux_2_34_x86_64"},
            "modern",
            f"modern 1.0 chosen; 2.0 has no wheel for {TARGET}",
        ),
        (None, "modern", "modern 1.0 chosen; 2.0 has only an sdist"),
        ({"requires_python": ">=3.12"}, "modern<2", None),  # the spec's own bound
        ({"yanked": "broken"}, "modern", None),
        ({"uploaded": dt.datetime(2025, 7, 1, tzinfo=dt.UTC)}, "modern", None),  # exclude-newer
    ],
)
def test_which_downgrades_are_said(
    lock_cli: LockCli,
    tmp_path: Path,
    index_server: IndexServer,
    pypi: Index,
    build: dict[str, Any] | None,
    requirement: str,
    line: str | None,
) -> None:
    pypi.wheel("modern", "1.0")
    if build is None:
        pypi.add(build_sdist(tmp_path, "modern", "2.0"))
    else:
        pypi.wheel("modern", "2.0", **build)
    pypi.wheel("modern", "2.1b1")  # a pre-release the policy does not allow: not a downgrade
    _spec(tmp_path, index_server, [requirement], 'exclude-newer = "2025-06-01T00:00:00Z"\n')
    run = lock_cli("lock")
    assert run.code == 0, run.err
    assert _pins(tmp_path) == {"modern": "1.0"}
    assert _warnings(run) == ([] if line is None else [f"warning: py3.11-amd64: {line}"])
    assert ("downgrades" in _lock(tmp_path)["targets"][0]) == (line is not None)
    # a lock without downgrades stays 1.3, readable by the releases before them
    assert _lock(tmp_path)["lock-version"] == ("1.3" if line is None else "1.4")


def test_a_project_on_no_index_is_bad_input_with_close_names(
    lock_cli: LockCli, tmp_path: Path, index_server: IndexServer, pypi: Index
) -> None:
    pypi.wheel("alpha", "1.0", requires=["beta"])
    pypi.wheel("beta", "1.0")
    pypi.wheel("pyyaml", "6.0")
    url = index_server.url("pypi")
    _spec(tmp_path, index_server, ["alpha", "betta"])
    run = lock_cli("lock")
    assert run.code == 2
    assert run.err == f"error: betta was not found on {url} (did you mean beta?).\n" + (
        HINT_NOT_FOUND
    )
    _spec(tmp_path, index_server, ["yaml", "nothing-like-it"])
    run = lock_cli("lock")
    assert run.code == 2
    assert run.err == (
        "error: 2 requirements of the spec are on no configured index:\n"
        f"  nothing-like-it was not found on {url}.\n"
        f"  yaml was not found on {url} (did you mean pyyaml?).\n" + HINT_NOT_FOUND
    )
    assert not (tmp_path / "reprolock.lock").exists()
    # Typos (a letter doubled, two swapped) are looked up on the index
    pypi.wheel("numpy", "2.0")
    for typo in ("numpyy", "nmupy"):
        _spec(tmp_path, index_server, [typo])
        run = lock_cli("lock")
        assert run.code == 2
        assert run.err.startswith(f"error: {typo} was not found on {url} (did you mean numpy?).\n")
    # Missing below the spec: the conflict names it
    pypi.wheel("gamma", "1.0", requires=["ghost>=1"])
    _spec(tmp_path, index_server, ["gamma"])
    run = lock_cli("lock")
    assert run.code == 3
    assert f"  gamma==1.0 requires ghost>=1. ghost was not found on {url}.\n" in run.err


def test_a_project_of_many_versions_none_installable_fails_fast_and_short(
    lock_cli: LockCli, tmp_path: Path, index_server: IndexServer, pypi: Index
) -> None:
    # As tfds-nightly for big_vision: 1,347 versions, every one needing the sdist-only promise.
    for minor in range(1400):
        pypi.wheel("nightly", f"1.{minor}", requires=["promise"])
    pypi.add(build_sdist(tmp_path, "promise", "2.3"))
    _spec(tmp_path, index_server, ["nightly"])
    started = time.monotonic()
    run = lock_cli("lock")
    elapsed = time.monotonic() - started
    assert run.code == 3
    assert run.err == (
        f"error: no set of Python packages satisfies every requirement for {TARGET}: the "
        "resolver stopped after 100 versions of nightly (of the 1,400 that fit the other "
        "requirements), each needing a project with no installable release: promise (100 of "
        "them), which has only an sdist. Older versions were not tried.\n"
        "Require a version of nightly that does without it, or publish a wheel of what it "
        "needs on a [[python.index]]; `reprolock explain nightly` lists the versions.\n"
    )
    assert len(run.err.encode()) < 2048
    assert elapsed < 60, elapsed


def test_many_conflicting_versions_are_counted_not_listed(
    lock_cli: LockCli, tmp_path: Path, index_server: IndexServer, pypi: Index
) -> None:
    for minor in range(60):
        pypi.wheel("mid", f"1.{minor}", requires=["beta>=2"])
    pypi.wheel("beta", "1.0")
    pypi.wheel("beta", "2.0")
    _spec(tmp_path, index_server, ["mid", "beta<2"])
    run = lock_cli("lock")
    assert run.code == 3
    assert len(run.err.encode()) < 2048
    assert (
        "  the spec requires beta<2; mid==1.59, ==1.58, ==1.57, ==1.56, ==1.55 and 55 more "
        "versions require beta>=2. Installable versions for this target: 2.0, 1.0."
    ) in run.err


def test_explain_names_the_first_rule_for_every_newer_version(
    lock_cli: LockCli, tmp_path: Path, index_server: IndexServer, pypi: Index
) -> None:
    pypi.wheel("lib", "0.9", tag="cp310-cp310-manylinux_2_17_x86_64")  # below lib>=1
    pypi.wheel("lib", "1.0")
    pypi.wheel("lib", "1.5")
    pypi.wheel("lib", "1.6", yanked="broken build")
    pypi.wheel("lib", "1.7", uploaded=dt.datetime(2025, 7, 1, tzinfo=dt.UTC))
    pypi.wheel("lib", "1.8", requires_python=">=3.12")
    pypi.add(build_sdist(tmp_path, "lib", "1.9"))
    pypi.wheel("lib", "2.0", tag="cp311-cp311-win_amd64")
    pypi.wheel("lib", "2.1rc1")
    pypi.wheel("lib", "2.2", requires=["dep==1.*"])
    pypi.add(build_sdist(tmp_path, "dep", "1.0"))
    pypi.wheel("lib", "3.0")
    pypi.wheel("lib", "1.5.1", requires=["conflicting>=2"])  # installable, conflicts
    pypi.wheel("conflicting", "1.0")
    pypi.wheel("conflicting", "2.0")
    _spec(
        tmp_path,
        index_server,
        ["lib>=1,<3", "conflicting<2"],
        'exclude-newer = "2025-06-01T00:00:00Z"\n',
    )
    run = lock_cli("lock")
    assert run.code == 0, run.err
    assert _warnings(run) == [
        "warning: py3.11-amd64: lib 1.5 chosen; 2.2 needs dep==1.*, which has only an sdist"
    ]
    run = lock_cli("explain", "lib")
    assert run.code == 0, run.err
    no_wheel = f"no wheel for {TARGET}; has"
    assert run.out.split("  newer versions", 1)[1] == (
        " (9), the first rule that excluded each:\n"
        "    3.0: excluded by lib<3,>=1 (from the spec)\n"
        "    2.2: needs dep==1.*, which has only an sdist\n"
        '    2.1rc1: a pre-release, not allowed (python.prerelease = "if-necessary-or-explicit"'
        "; a requirement naming a pre-release allows them)\n"
        f"    2.0: {no_wheel} lib-2.0-cp311-cp311-win_amd64.whl\n"
        "    1.9: only an sdist is published, and building it is refused "
        "(python.sdists, no-build, only-build)\n"
        "    1.8: requires Python >=3.12, the target is 3.11.0\n"
        "    1.7: uploaded 2025-07-01 00:00Z, after exclude-newer 2025-06-01 00:00Z\n"
        "    1.6: yanked: broken build\n"
        "    1.5.1: installable; not chosen: it needs conflicting>=2, and conflicting 1.0 is "
        "locked (conflicting<2 from the spec)\n"
        "  installable versions (6): 3.0, 2.2, 1.6, 1.5.1, 1.5, 1.0\n"
        "  rejected versions (1):\n"
        "    0.9: excluded by lib<3,>=1 (from the spec)\n"
    )


@pytest.mark.parametrize(
    ("requirement", "chosen", "installable"),
    [
        ("pre", "1.0", "1.0"),
        ("pre>=2.0b1", "2.0b1", "2.0b1, 1.0"),  # a specifier naming a pre-release allows them
    ],
)
def test_pre_releases_are_installable_only_where_the_spec_allows_them(
    lock_cli: LockCli,
    tmp_path: Path,
    index_server: IndexServer,
    pypi: Index,
    requirement: str,
    chosen: str,
    installable: str,
) -> None:
    pypi.wheel("pre", "1.0")
    pypi.wheel("pre", "2.0b1")
    _spec(tmp_path, index_server, [requirement])
    run = lock_cli("lock")
    assert run.code == 0, run.err
    assert _warnings(run) == []
    assert _pins(tmp_path) == {"pre": chosen}
    run = lock_cli("explain", "pre")
    assert f"  chosen: {chosen}  pre-{chosen}-py3-none-any.whl\n" in run.out
    assert f"  installable versions ({installable.count(',') + 1}): {installable}\n" in run.out
    if chosen == "1.0":
        assert (
            "  newer versions (1), the first rule that excluded each:\n"
            '    2.0b1: a pre-release, not allowed (python.prerelease = "if-necessary-or-explicit"'
        ) in run.out


def test_explain_blames_the_specifier_not_the_files_for_versions_it_excludes(
    lock_cli: LockCli, tmp_path: Path, index_server: IndexServer, pypi: Index
) -> None:
    pypi.wheel("numpy", "1.25.2", tag="cp310-cp310-manylinux_2_17_x86_64")
    pypi.wheel("numpy", "1.26.4", tag="cp311-cp311-manylinux_2_17_x86_64")
    pypi.wheel("numpy", "2.0.0rc1", tag="cp311-cp311-manylinux_2_17_x86_64")
    _spec(tmp_path, index_server, ["numpy>=1.26"])
    assert lock_cli("lock").code == 0
    run = lock_cli("explain", "numpy")
    assert run.out.endswith(
        "  newer versions (1), the first rule that excluded each:\n"
        '    2.0.0rc1: a pre-release, not allowed (python.prerelease = "if-necessary-or-explicit"'
        "; a requirement naming a pre-release allows them)\n"
        "  installable versions (1): 1.26.4\n"
        "  rejected versions (1):\n"
        "    1.25.2: excluded by numpy>=1.26 (from the spec)\n"
    )


def test_unsatisfiable_lists_no_pre_release_as_installable(
    lock_cli: LockCli, tmp_path: Path, index_server: IndexServer, pypi: Index
) -> None:
    pypi.wheel("left", "1.0", requires=["beta>=2"])
    pypi.wheel("beta", "1.0")
    pypi.wheel("beta", "3.0rc1")
    _spec(tmp_path, index_server, ["left", "beta<2"])
    run = lock_cli("lock")
    assert run.code == 3
    assert (
        "  the spec requires beta<2; left==1.0 requires beta>=2. Installable versions for this "
        "target: 1.0.\n"
    ) in run.err


def test_explain_names_a_requirement_whose_marker_is_false_on_the_target(
    lock_cli: LockCli, tmp_path: Path, index_server: IndexServer, pypi: Index
) -> None:
    pypi.wheel("alpha", "1.0")
    pypi.wheel("winonly", "1.0")
    _spec(tmp_path, index_server, ["alpha", 'winonly; sys_platform == \\"win32\\"'])
    assert lock_cli("lock").code == 0
    run = lock_cli("explain", "winonly")
    assert (
        "  not locked: the spec's requirement does not apply on this target (its marker is "
        'false): winonly; sys_platform == "win32"\n'
    ) in run.out
