"""`reprolock lock` for the Python layer against a real loopback index of real wheels."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Run
from tests.pyindex import IndexServer, build_sdist

LockCli = Callable[..., Run]


def _spec(
    tmp_path: Path,
    requirements: list[str],
    *,
    platforms: tuple[str, ...] = ("linux/amd64",),
    python: str = "3.11",
    extra: str = "",
) -> None:
    reqs = ", ".join(json.dumps(r) for r in requirements)
    plats = ", ".join(json.dumps(p) for p in platforms)
    (tmp_path / "reprolock.toml").write_text(
        f'[environment]\npython = "{python}"\nplatforms = [{plats}]\n\n'
        f"[python]\nrequirements = [{reqs}]\n{extra}"
    )


def _default_index(server: IndexServer, name: str = "pypi") -> str:
    return f'\n[[python.index]]\nname = "{name}"\nurl = "{server.url(name)}"\ndefault = true\n'


def _pins(tmp_path: Path, target: int = 0) -> dict[str, str]:
    lock = tomllib.loads((tmp_path / "reprolock.lock").read_text())
    return {p["name"]: p["version"] for p in lock["targets"][target].get("packages", [])}


def _packages(tmp_path: Path, target: int = 0) -> dict[str, dict[str, Any]]:
    lock = tomllib.loads((tmp_path / "reprolock.lock").read_text())
    return {p["name"]: p for p in lock["targets"][target].get("packages", [])}


@pytest.fixture
def pypi(index_server: IndexServer, tmp_path: Path) -> Any:
    """A default index with a small dependency graph."""
    idx = index_server.add_index("pypi", tmp_path / "pypi")
    idx.wheel("alpha", "1.0")
    idx.wheel("alpha", "2.0", requires=["beta<2"])
    idx.wheel("beta", "1.0")
    idx.wheel("beta", "1.5")
    idx.wheel("beta", "2.0")
    return idx


def test_locks_pins_with_hashes_and_dependencies(
    lock_cli: LockCli, tmp_path: Path, index_server: IndexServer, pypi: Any
) -> None:
    _spec(tmp_path, ["alpha>=1"], extra=_default_index(index_server))
    run = lock_cli("lock")
    assert run.code == 0, run.err
    assert run.out == "py3.11-amd64: 2 Python packages\nwrote reprolock.lock\n"
    packages = _packages(tmp_path)
    assert {n: p["version"] for n, p in packages.items()} == {"alpha": "2.0", "beta": "1.5"}
    alpha = packages["alpha"]
    assert alpha["dependencies"] == ["beta"]
    assert alpha["index"] == index_server.url("pypi")
    [wheel] = alpha["wheels"]
    data = (tmp_path / "pypi" / "alpha-2.0-py3-none-any.whl").read_bytes()
    assert wheel == {
        "filename": "alpha-2.0-py3-none-any.whl",
        "url": index_server.url("pypi").removesuffix("/simple")
        + "/files/alpha-2.0-py3-none-any.whl",
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
    }
    # Nothing changed: nothing to resolve; re-resolving gives the same bytes.
    before = (tmp_path / "reprolock.lock").read_bytes()
    index_server.log.clear()
    run = lock_cli("lock")
    assert run.out == "reprolock.lock is up to date with reprolock.toml (--refresh re-resolves)\n"
    assert index_server.log == []
    assert lock_cli("lock", "--refresh").out.endswith("unchanged: reprolock.lock\n")
    assert (tmp_path / "reprolock.lock").read_bytes() == before
    assert lock_cli("check").code == 0


def test_markers_are_evaluated_for_the_target_not_the_host(
    lock_cli: LockCli, tmp_path: Path, index_server: IndexServer, pypi: Any
) -> None:
    pypi.wheel(
        "gamma",
        "1.0",
        requires=[
            'delta; python_version < "3.12"',
            'epsilon; sys_platform == "win32"',
            'zeta; platform_machine == "aarch64"',
            'eta; python_full_version >= "3.11.5"',
        ],
    )
    for name in ("delta", "epsilon", "zeta", "eta"):
        pypi.wheel(name, "1.0")
    _spec(
        tmp_path,
        ["gamma"],
        platforms=("linux/amd64", "linux/arm64"),
        extra=_default_index(index_server),
    )
    assert lock_cli("lock").code == 0
    # python_full_version is 3.11.0 for "3.11" (as uv assumes), whatever the host runs.
    assert set(_pins(tmp_path, 0)) == {"gamma", "delta"}
    assert set(_pins(tmp_path, 1)) == {"gamma", "delta", "zeta"}


def test_extras(lock_cli: LockCli, tmp_path: Path, index_server: IndexServer, pypi: Any) -> None:
    pypi.wheel("app", "1.0", requires=["alpha"], extras={"fast": ["speedy>=2"]})
    pypi.wheel("speedy", "1.0")
    pypi.wheel("speedy", "2.1")
    _spec(tmp_path, ["app[fast]"], extra=_default_index(index_server))
    assert lock_cli("lock").code == 0
    assert _pins(tmp_path) == {"alpha": "2.0", "app": "1.0", "beta": "1.5", "speedy": "2.1"}
    assert sorted(_packages(tmp_path)["app"]["dependencies"]) == ["alpha", "speedy"]


def test_requires_python_of_the_target(
    lock_cli: LockCli, tmp_path: Path, index_server: IndexServer, pypi: Any
) -> None:
    pypi.wheel("modern", "1.0", requires_python=">=3.8")
    pypi.wheel("modern", "2.0", requires_python=">=3.12")
    _spec(tmp_path, ["modern"], extra=_default_index(index_server))
    assert lock_cli("lock").code == 0
    assert _pins(tmp_path)["modern"] == "1.0"
    _spec(tmp_path, ["modern"], python="3.12", extra=_default_index(index_server))
    assert lock_cli("lock").code == 0
    assert _pins(tmp_path)["modern"] == "2.0"


def test_yanked_files_are_skipped_unless_pinned(
    lock_cli: LockCli, tmp_path: Path, index_server: IndexServer, pypi: Any
) -> None:
    pypi.wheel("yank", "1.0")
    pypi.wheel("yank", "1.1", yanked="broken build")
    _spec(tmp_path, ["yank"], extra=_default_index(index_server))
    assert lock_cli("lock").code == 0
    assert _pins(tmp_path)["yank"] == "1.0"
    _spec(tmp_path, ["yank==1.1"], extra=_default_index(index_server))
    assert lock_cli("lock").code == 0
    assert _pins(tmp_path)["yank"] == "1.1"


def test_platform_tags_of_the_target(
    lock_cli: LockCli, tmp_path: Path, index_server: IndexServer, pypi: Any
) -> None:
    for tag in (
        "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64",
        "cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64",
        "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64",
        "cp311-cp311-macosx_11_0_arm64",
        "cp311-cp311-win_amd64",
    ):
        pypi.wheel("native", "1.0", tag=tag)
    pypi.wheel("native", "2.0", tag="cp311-cp311-manylinux_2_34_x86_64")
    _spec(
        tmp_path,
        ["native"],
        platforms=("linux/amd64", "linux/arm64"),
        extra=_default_index(index_server),
    )
    assert lock_cli("lock").code == 0
    amd = _packages(tmp_path, 0)["native"]
    arm = _packages(tmp_path, 1)["native"]
    assert amd["version"] == arm["version"] == "1.0"  # 2.0 needs glibc 2.34
    assert [w["filename"] for w in amd["wheels"]] == [
        "native-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    ]
    assert [w["filename"] for w in arm["wheels"]] == [
        "native-1.0-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"
    ]
    run = lock_cli("explain", "native", "--target", "py3.11-amd64")
    assert run.code == 0
    assert (
        "    2.0: no wheel for CPython 3.11.0 on linux/amd64 (glibc 2.28); has "
        "native-2.0-cp311-cp311-manylinux_2_34_x86_64.whl\n"
    ) in run.out


def test_local_versions_through_a_routed_index(
    lock_cli: LockCli, tmp_path: Path, index_server: IndexServer, pypi: Any
) -> None:
    pypi.wheel("torch", "2.5.1", requires=["alpha"])
    cu = index_server.add_index("cu124", tmp_path / "cu124")
    cu.wheel("torch", "2.5.1+cu124", requires=["alpha"])
    cu.wheel("torch", "2.5.1+cu121", requires=["alpha"])
    cu.wheel("alpha", "9.0")  # never used: alpha is not routed to this index
    routes = (
        _default_index(index_server) + f'\n[[python.index]]\nname = "cu124"\n'
        f'url = "{index_server.url("cu124")}"\npackages = ["torch"]\n'
    )
    _spec(tmp_path, ["torch==2.5.1"], extra=routes)
    assert lock_cli("lock").code == 0
    packages = _packages(tmp_path)
    assert packages["torch"]["version"] == "2.5.1+cu124"
    assert packages["torch"]["index"] == index_server.url("cu124")
    assert packages["alpha"]["version"] == "2.0"
    assert packages["alpha"]["index"] == index_server.url("pypi")
    run = lock_cli("explain", "torch")
    assert 'looked up in: index "cu124" only (routed)' in run.out


def test_routed_package_never_falls_back(
    lock_cli: LockCli, tmp_path: Path, index_server: IndexServer, pypi: Any
) -> None:
    pypi.wheel("internal-tool", "99.0")  # a dependency-confusion attempt on the public index
    index_server.add_index("private", tmp_path / "private")  # lacks the package
    routes = (
        _default_index(index_server) + f'\n[[python.index]]\nname = "private"\n'
        f'url = "{index_server.url("private")}"\npackages = ["internal-tool"]\n'
    )
    _spec(tmp_path, ["internal-tool"], extra=routes)
    run = lock_cli("lock")
    assert run.code == 2
    assert run.err.startswith(
        f"error: internal-tool was not found on {index_server.url('private')}.\n"
    )
    assert not (tmp_path / "reprolock.lock").exists()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        # Advertised PEP 658 metadata: the `.metadata` file alone.
        ({"pep658": "advertised"}, {("metadata", 200)}),
        # Not advertised: range reads into the zip, which answer within the hedge delay.
        ({"pep658": "hidden"}, {("range", 206)}),
        ({"pep658": "none"}, {("range", 206)}),
        ({"pep658": "none", "formats": ("html",)}, {("range", 206)}),
        # Slow ranges: `.metadata` is asked for too, and answers first.
        ({"pep658": "hidden", "range_delay": 1.5}, {("metadata", 200)}),
        # No range support: `.metadata` is tried, then the whole wheel comes back.
        ({"pep658": "none", "ranges": False}, {("metadata", 404), ("range", 200)}),
    ],
)
def test_metadata_strategies(
    lock_cli: LockCli,
    tmp_path: Path,
    index_server: IndexServer,
    options: dict[str, Any],
    expected: set[tuple[str, int]],
) -> None:
    idx = index_server.add_index("odd", tmp_path / "odd", **options)
    idx.wheel("big", "1.0", requires=["small"], payload=300_000)
    idx.wheel("small", "1.0")
    _spec(tmp_path, ["big"], extra=_default_index(index_server, "odd"))
    started = time.monotonic()
    run = lock_cli("lock")
    seconds = time.monotonic() - started
    assert run.code == 0, run.err
    assert _pins(tmp_path) == {"big": "1.0", "small": "1.0"}
    seen = {
        ("metadata" if path.endswith(".metadata") else "range", status)
        for path, _range, status in index_server.responses
        if "/files/big" in path
    }
    assert seen == expected
    if options.get("range_delay"):  # the lock did not wait for the slow range reads
        assert seconds < 1.5
    pages = [accept for path, _, accept in index_server.log if path.endswith("/simple/big/")]
    assert pages
    assert "application/vnd.pypi.simple.v1+json" in (pages[0] or "")


def test_big_wheel_metadata_costs_two_range_requests(
    lock_cli: LockCli, tmp_path: Path, index_server: IndexServer
) -> None:
    idx = index_server.add_index("plain", tmp_path / "plain", pep658="none")
    idx.wheel("huge", "1.0", payload=5_000_000)
    _spec(tmp_path, ["huge"], extra=_default_index(index_server, "plain"))
    assert lock_cli("lock").code == 0
    ranges = [r for path, r, _ in index_server.log if "/files/huge" in path and r]
    assert ranges[0] == "bytes=-65536"
    assert len(ranges) <= 2


def test_sdist_only_is_a_clear_error(
    lock_cli: LockCli, tmp_path: Path, index_server: IndexServer, pypi: Any
) -> None:
    pypi.add(build_sdist(tmp_path, "onlysource", "1.0"))
    _spec(tmp_path, ["onlysource"], extra='sdists = "refuse"\n' + _default_index(index_server))
    run = lock_cli("lock")
    assert run.code == 3
    assert "Traceback" not in run.err
    assert (
        "Rejected: 1.0: only an sdist is published, and building it is refused "
        "(python.sdists, no-build, only-build)."
    ) in run.err


def test_conflict_is_explained_as_requirement_chains(
    lock_cli: LockCli, tmp_path: Path, index_server: IndexServer, pypi: Any
) -> None:
    pypi.wheel("left", "1.0", requires=["beta>=2"])
    pypi.wheel("right", "1.0", requires=["beta<1.2"])
    _spec(tmp_path, ["left", "right"], extra=_default_index(index_server))
    run = lock_cli("lock")
    assert run.code == 3
    assert run.err.startswith(
        "error: no set of Python packages satisfies every requirement for CPython 3.11.0 on "
        "linux/amd64 (glibc 2.28):\n"
    )
    assert "left==1.0 requires beta>=2; right==1.0 requires beta<1.2." in run.err
    assert "Relax the conflicting requirements" in run.err


def test_files_without_hashes_are_refused_unless_allowed(
    lock_cli: LockCli, tmp_path: Path, index_server: IndexServer
) -> None:
    idx = index_server.add_index("nohash", tmp_path / "nohash", hashes=False)
    idx.wheel("loose", "1.0")
    _spec(tmp_path, ["loose"], extra=_default_index(index_server, "nohash"))
    run = lock_cli("lock")
    assert run.code == 3
    assert (
        '1.0: loose-1.0-py3-none-any.whl has no sha256 on the index; add "loose" to '
        "python.allow-unhashed to accept that"
    ) in run.err
    spec = tmp_path / "reprolock.toml"
    spec.write_text(
        spec.read_text().replace("[python]\n", '[python]\nallow-unhashed = ["loose"]\n')
    )
    run = lock_cli("lock")
    assert run.code == 0, run.err
    assert "sha256" not in _packages(tmp_path)["loose"]["wheels"][0]


def test_exclude_newer(
    lock_cli: LockCli, tmp_path: Path, index_server: IndexServer, pypi: Any
) -> None:
    pypi.wheel("dated", "1.0", uploaded=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    pypi.wheel("dated", "2.0", uploaded=dt.datetime(2025, 7, 1, tzinfo=dt.UTC))
    _spec(
        tmp_path,
        ["dated"],
        extra='exclude-newer = "2025-06-01T00:00:00Z"\n' + _default_index(index_server),
    )
    assert lock_cli("lock").code == 0
    assert _pins(tmp_path)["dated"] == "1.0"


@pytest.mark.parametrize(
    ("policy", "requirement", "expected"),
    [
        (None, "pre", "1.0"),
        (None, "pre>=2.0b1", "2.0b1"),
        ('prerelease = "allow"', "pre", "2.0b1"),
        ('prerelease = "disallow"', "onlypre", None),
        (None, "onlypre", "0.1a1"),
    ],
)
def test_prerelease_policy(
    lock_cli: LockCli,
    tmp_path: Path,
    index_server: IndexServer,
    pypi: Any,
    policy: str | None,
    requirement: str,
    expected: str | None,
) -> None:
    pypi.wheel("pre", "1.0")
    pypi.wheel("pre", "2.0b1")
    pypi.wheel("onlypre", "0.1a1")
    _spec(
        tmp_path,
        [requirement],
        extra=(policy + "\n" if policy else "") + _default_index(index_server),
    )
    run = lock_cli("lock")
    if expected is None:
        assert run.code == 3
    else:
        assert run.code == 0, run.err
        assert _pins(tmp_path)[requirement.split(">", maxsplit=1)[0]] == expected


def test_minimal_updates_and_upgrades(
    lock_cli: LockCli, tmp_path: Path, index_server: IndexServer, pypi: Any
) -> None:
    _spec(tmp_path, ["alpha", "beta"], extra=_default_index(index_server))
    assert lock_cli("lock").code == 0
    assert _pins(tmp_path) == {"alpha": "2.0", "beta": "1.5"}
    pypi.wheel("alpha", "2.1", requires=["beta<2"])
    pypi.wheel("beta", "1.6")
    # A new requirement is added; existing pins that still fit are kept.
    pypi.wheel("gamma", "1.0")
    _spec(tmp_path, ["alpha", "beta", "gamma"], extra=_default_index(index_server))
    assert lock_cli("lock").code == 0
    assert _pins(tmp_path) == {"alpha": "2.0", "beta": "1.5", "gamma": "1.0"}
    assert lock_cli("lock", "--upgrade-package", "beta").code == 0
    assert _pins(tmp_path) == {"alpha": "2.0", "beta": "1.6", "gamma": "1.0"}
    assert lock_cli("lock", "--upgrade").code == 0
    assert _pins(tmp_path) == {"alpha": "2.1", "beta": "1.6", "gamma": "1.0"}


def test_offline_uses_the_cache(
    lock_cli: LockCli, tmp_path: Path, index_server: IndexServer, pypi: Any
) -> None:
    _spec(tmp_path, ["alpha"], extra=_default_index(index_server))
    assert lock_cli("lock").code == 0
    index_server.log.clear()
    (tmp_path / "reprolock.lock").unlink()
    run = lock_cli("--offline", "lock")
    assert run.code == 0, run.err
    assert index_server.log == []
    assert _pins(tmp_path) == {"alpha": "2.0", "beta": "1.5"}
    _spec(tmp_path, ["alpha", "never-seen"], extra=_default_index(index_server))
    run = lock_cli("--offline", "lock")
    assert run.code == 4
    assert 'no cached index page for "never-seen"' in run.err


def test_warm_locks_read_page_summaries(
    lock_cli: LockCli, tmp_path: Path, index_server: IndexServer, pypi: Any
) -> None:
    _spec(tmp_path, ["alpha"], extra=_default_index(index_server))
    assert lock_cli("lock").code == 0
    locked = (tmp_path / "reprolock.lock").read_text()
    # Without the page bodies, the summaries (one per page body and tag set) are enough.
    for record in (tmp_path / "cache" / "http").glob("*.json"):
        digest = json.loads(record.read_text())["sha256"]
        (tmp_path / "cache" / "blobs" / "sha256" / digest).unlink()
    (tmp_path / "reprolock.lock").unlink()
    run = lock_cli("--offline", "lock")
    assert run.code == 0, run.err
    assert (tmp_path / "reprolock.lock").read_text() == locked
    # Other targets keep other files: they have no summary yet, and need the bodies.
    _spec(
        tmp_path,
        ["alpha"],
        platforms=("linux/amd64", "linux/arm64"),
        extra=_default_index(index_server),
    )
    run = lock_cli("--offline", "lock")
    assert run.code == 4
    assert 'no cached index page for "alpha"' in run.err


def test_credentials_never_reach_the_lock_or_messages(
    lock_cli: LockCli, tmp_path: Path, index_server: IndexServer, pypi: Any
) -> None:
    url = index_server.url("pypi").replace("http://", "http://user:s3cret@")
    _spec(
        tmp_path,
        ["alpha", "missing-one"],
        extra=f'\n[[python.index]]\nname = "pypi"\nurl = "{url}"\ndefault = true\n',
    )
    run = lock_cli("lock")
    assert run.code == 2
    assert "missing-one was not found on http://127.0.0.1:" in run.err
    assert "s3cret" not in run.err + run.out
    _spec(
        tmp_path,
        ["alpha"],
        extra=f'\n[[python.index]]\nname = "pypi"\nurl = "{url}"\ndefault = true\n',
    )
    assert lock_cli("lock").code == 0
    assert "s3cret" not in (tmp_path / "reprolock.lock").read_text()


def test_unreachable_index_is_a_source_error(lock_cli: LockCli, tmp_path: Path) -> None:
    _spec(
        tmp_path,
        ["alpha"],
        extra='\n[[python.index]]\nname = "gone"\n'
        'url = "http://127.0.0.1:9/simple"\ndefault = true\n',
    )
    run = lock_cli("lock")
    assert run.code == 4
    assert run.err.startswith("error: cannot reach http://127.0.0.1:9/simple/alpha/")
    assert "Traceback" not in run.err


def test_credentials_from_the_environment(
    lock_cli: LockCli,
    tmp_path: Path,
    index_server: IndexServer,
    pypi: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import base64

    monkeypatch.setenv("REPROLOCK_INDEX_MY_PYPI_USERNAME", "robot")
    monkeypatch.setenv("REPROLOCK_INDEX_MY_PYPI_PASSWORD", "t0ken")
    _spec(
        tmp_path,
        ["alpha"],
        extra=f'\n[[python.index]]\nname = "my-pypi"\n'
        f'url = "{index_server.url("pypi")}"\ndefault = true\n',
    )
    seen: list[str | None] = []
    handler = index_server.RequestHandlerClass
    original = handler.do_GET  # type: ignore[attr-defined]

    def spy(self: Any) -> None:
        seen.append(self.headers.get("Authorization"))
        original(self)

    monkeypatch.setattr(handler, "do_GET", spy)
    run = lock_cli("lock")
    assert run.code == 0, run.err
    expected = "Basic " + base64.b64encode(b"robot:t0ken").decode()
    assert seen and all(auth == expected for auth in seen)
    assert "t0ken" not in (tmp_path / "reprolock.lock").read_text()


def test_pages_are_revalidated_with_etags(
    lock_cli: LockCli, tmp_path: Path, index_server: IndexServer
) -> None:
    idx = index_server.add_index("tagged", tmp_path / "tagged", etags=True)
    idx.wheel("alpha", "1.0")
    _spec(tmp_path, ["alpha"], extra=_default_index(index_server, "tagged"))
    assert lock_cli("lock").code == 0
    index_server.responses.clear()
    idx.wheel("alpha", "1.1")  # the page changes: a new ETag
    assert lock_cli("lock", "--upgrade").code == 0
    assert _pins(tmp_path) == {"alpha": "1.1"}
    index_server.responses.clear()
    assert lock_cli("lock", "--refresh").code == 0
    pages = [status for path, _, status in index_server.responses if "/simple/" in path]
    assert pages == [304]  # unchanged: revalidated, not downloaded again


def _backtracking_graph(index: Any) -> None:
    """lib's two newest releases cap core below what tool>=2 needs: lib walks back to 1.0."""
    index.wheel("lib", "1.0", requires=["core"])
    index.wheel("lib", "2.0", requires=["core<2", "helper"])
    index.wheel("lib", "3.0", requires=["core<2", "helper>=1.1"])
    index.wheel("helper", "1.0")
    index.wheel("helper", "1.1", requires=["core>=1"])
    index.wheel("tool", "1.0", requires=["core>=1"])
    index.wheel("tool", "2.0", requires=["core>=2", "helper"])
    for version in ("1.0", "1.5", "2.0", "2.1"):
        index.wheel("core", version)


def test_the_plain_resolver_locks_what_the_memoizing_one_does(
    lock_cli: LockCli,
    tmp_path: Path,
    index_server: IndexServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The memo of pin checks rests on resolvelib's private names; without them lock falls
    # back to resolvelib's plain Resolver, which must give the same lock.
    from reprolock.resolve.python import resolve

    _backtracking_graph(index_server.add_index("pypi", tmp_path / "pypi"))
    _spec(tmp_path, ["lib", "tool>=2"], extra=_default_index(index_server))
    assert lock_cli("lock").code == 0
    memoized = _packages(tmp_path)
    assert {n: p["version"] for n, p in memoized.items()} == {
        "lib": "1.0",
        "tool": "2.0",
        "core": "2.1",
        "helper": "1.1",
    }
    (tmp_path / "reprolock.lock").unlink()
    monkeypatch.setattr(resolve, "_MEMOIZING_RESOLVER", None)
    assert lock_cli("lock").code == 0
    assert _packages(tmp_path) == memoized


def test_without_resolvelibs_private_names_the_plain_resolver_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from resolvelib import Resolver

    from reprolock.resolve.python import resolve

    if resolve._memoizing_resolver() is None:
        pytest.skip("this resolvelib (before 1.1) has not the private names: plain Resolver")
    monkeypatch.setitem(sys.modules, "resolvelib.resolvers.resolution", None)
    assert resolve._memoizing_resolver() is None
    monkeypatch.setattr(resolve, "_MEMOIZING_RESOLVER", None)
    assert type(resolve._resolver(object())) is Resolver  # type: ignore[arg-type]


class _Counting:
    """Counts what resolvelib reports (rounds, conflicts), passing each on to ``inner``."""

    def __init__(self, inner: Any, counts: dict[str, int]) -> None:
        self.inner = inner
        self.counts = counts

    def __getattr__(self, hook: str) -> Callable[..., None]:
        def both(*args: Any, **kwargs: Any) -> None:
            self.counts[hook] = self.counts.get(hook, 0) + 1
            getattr(self.inner, hook)(*args, **kwargs)

        return both


def test_a_conflict_behind_a_chain_of_innocent_pins_is_not_walked_release_by_release(
    lock_cli: LockCli,
    tmp_path: Path,
    index_server: IndexServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # cap's newest release caps core below 2, and is pinned first (a direct requirement with
    # the fewest candidates); asker, at the end of a chain of five packages of three releases
    # each that all require core, needs core>=2.  resolvelib backjumps to the most recent pin
    # connected to the conflict, a link of the chain, and walked the chain's combinations of
    # releases before undoing cap (619 rounds, 243 conflicts); now the culprit, learned from
    # the first conflicts, is pinned last in a new attempt (53 rounds, 16 conflicts).
    from reprolock.resolve.python import resolve

    index = index_server.add_index("pypi", tmp_path / "pypi")
    index.wheel("cap", "1.0", requires=["core"])
    index.wheel("cap", "2.0", requires=["core<2"])
    for version in ("1.0", "2.0"):
        index.wheel("core", version)
    links = [f"link{i}" for i in range(5)]
    for link, then in zip(links, [*links[1:], "asker"], strict=True):
        for version in ("1.0", "2.0", "3.0"):
            index.wheel(link, version, requires=[then, "core"])
    index.wheel("asker", "1.0", requires=["core>=2"])
    counts: dict[str, int] = {}
    plain = resolve._resolver

    def counting(*args: Any, **kwargs: Any) -> Any:
        resolver = plain(*args, **kwargs)
        resolver.reporter = _Counting(resolver.reporter, counts)  # type: ignore[assignment]
        return resolver

    monkeypatch.setattr(resolve, "_resolver", counting)
    _spec(tmp_path, ["cap", "link0"], extra=_default_index(index_server))
    assert lock_cli("lock").code == 0
    assert _pins(tmp_path) == {
        "cap": "1.0",
        "core": "2.0",
        "asker": "1.0",
        **dict.fromkeys(links, "3.0"),
    }
    assert counts["resolving_conflicts"] <= 40, counts
    assert counts["starting_round"] <= 150, counts
    # resolvelib before 1.1 does not narrow: get_preference then finds the causes itself
    from reprolock.resolve.python.provider import PythonProvider

    def unnarrowed(self: object, identifiers: Any, *args: Any, **kwargs: Any) -> Any:
        return identifiers

    monkeypatch.setattr(PythonProvider, "narrow_requirement_selection", unnarrowed)
    locked = (tmp_path / "reprolock.lock").read_text()
    (tmp_path / "reprolock.lock").unlink()
    counts.clear()
    assert lock_cli("lock").code == 0
    assert (tmp_path / "reprolock.lock").read_text() == locked
    assert counts["resolving_conflicts"] <= 40, counts


def _metadata_asked(server: IndexServer, project: str) -> list[str]:
    """The versions of ``project`` whose metadata (file or wheel range) was asked for."""
    found = set()
    for path, _, _ in server.log:
        name = path.rsplit("/", 1)[-1]
        if name.startswith(f"{project}-") and ".whl" in name:
            found.add(name.split("-")[1])
    return sorted(found)


def _too_new_below(server: IndexServer, tmp_path: Path, fits_below: int) -> Any:
    """alpha 1.0 … 1.9, those from 1.``fits_below`` on needing beta>=2, and a spec that pins
    beta==1.0: the resolver walks down to the release below ``fits_below``."""
    index = server.add_index("pypi", tmp_path / "pypi")
    index.wheel("beta", "1.0")
    index.wheel("beta", "2.0")
    for minor in range(10):
        requires = ["beta>=2"] if minor >= fits_below else ["beta"]
        index.wheel("alpha", f"1.{minor}", requires=requires)
    _spec(tmp_path, ["alpha", "beta==1.0"], extra=_default_index(server))
    return index


def test_one_release_too_new_fetches_one_ahead_not_a_whole_window(
    lock_cli: LockCli, tmp_path: Path, index_server: IndexServer
) -> None:
    # alpha 1.9 needs beta>=2 beside beta==1.0: the resolver takes 1.8, which fits.  Only the
    # next release is fetched ahead while it tries 1.8, not the eight below it.
    _too_new_below(index_server, tmp_path, 9)
    run = lock_cli("lock")
    assert run.code == 0, run.err
    assert _pins(tmp_path) == {"alpha": "1.8", "beta": "1.0"}
    assert _metadata_asked(index_server, "alpha") == ["1.7", "1.8", "1.9"]


def test_a_long_walk_down_fetches_the_releases_ahead_together(
    lock_cli: LockCli, tmp_path: Path, index_server: IndexServer
) -> None:
    # alpha 1.9 … 1.3 all need beta>=2 beside beta==1.0: the window ahead doubles with each
    # rejection, so 1.5's metadata (held until 1.2's is asked for) is answered before the
    # hold runs out, which a walk fetching one release at a time would not do.
    index = _too_new_below(index_server, tmp_path, 3)
    index.hold_until["alpha-1.5-py3-none-any.whl.metadata"] = "alpha-1.2-py3-none-any.whl.metadata"
    run = lock_cli("lock")
    assert run.code == 0, run.err
    assert _pins(tmp_path) == {"alpha": "1.2", "beta": "1.0"}
    assert index_server.held == [("alpha-1.5-py3-none-any.whl.metadata", True)]


def test_page_workers_boot_early_only_for_a_cache_without_pages(
    lock_cli: LockCli,
    tmp_path: Path,
    index_server: IndexServer,
    pypi: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from reprolock.resolve.python import page_parse

    booted: list[int] = []
    monkeypatch.setattr(page_parse, "boot", booted.append)
    monkeypatch.setattr(page_parse, "WORKERS", 2)
    _spec(tmp_path, ["alpha"], extra=_default_index(index_server))
    assert lock_cli("lock").code == 0
    assert booted == [1]  # an empty cache: every page is to be fetched (a small spec: one)
    shutil.move(tmp_path / "cache", tmp_path / "kept")
    up_to_date = lock_cli("lock")
    assert up_to_date.code == 0 and "up to date" in up_to_date.err + up_to_date.out
    assert booted == [1]  # nothing to resolve: no workers, even for an empty cache
    shutil.rmtree(tmp_path / "cache", ignore_errors=True)
    shutil.move(tmp_path / "kept", tmp_path / "cache")
    (tmp_path / "reprolock.lock").unlink()
    assert lock_cli("lock").code == 0
    assert len(booted) == 1  # pages cached: no early start
    (tmp_path / "reprolock.lock").unlink()
    monkeypatch.setattr(page_parse, "boot", lambda _count: pytest.fail("booted offline"))
    assert lock_cli("--offline", "lock").code == 0
    # a large spec starts both workers at once
    monkeypatch.setattr(page_parse, "boot", booted.append)
    monkeypatch.setattr(page_parse, "LARGE_SPEC", 2)
    shutil.rmtree(tmp_path / "cache")
    (tmp_path / "reprolock.lock").unlink()
    _spec(tmp_path, ["alpha", "beta"], extra=_default_index(index_server))
    assert lock_cli("lock").code == 0
    assert booted == [1, 2]
