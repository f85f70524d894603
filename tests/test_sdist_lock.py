"""Locking sdist-only packages: real sdists on a loopback index, built by their real
backends (setuptools' legacy and PEP 517 backends, hatchling) in a locked build environment."""

from __future__ import annotations

import hashlib
import json
import time
import tomllib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from reprolock.api.built_wheels import read_built
from reprolock.emit.dockerfile import DockerfileOptions, dockerignore, render
from reprolock.emit.dockerfile import requirements as emitted_requirements
from reprolock.errors import InputError
from reprolock.lock import LockedBase, loads
from tests.conftest import Run
from tests.pyindex import Index, IndexServer
from tests.sdists import HATCHLING, SETUPTOOLS, backend_wheels, make_sdist

LockCli = Callable[..., Run]


def _spec(tmp_path: Path, requirements: list[str], server: IndexServer, extra: str = "") -> None:
    reqs = ", ".join(json.dumps(r) for r in requirements)
    (tmp_path / "reprolock.toml").write_text(
        '[environment]\npython = "3.11"\nplatforms = ["linux/amd64"]\n\n'
        f"[python]\nrequirements = [{reqs}]\n{extra}\n"
        f'[[python.index]]\nname = "pypi"\nurl = "{server.url("pypi")}"\ndefault = true\n'
    )


def _packages(tmp_path: Path) -> dict[str, dict[str, Any]]:
    lock = tomllib.loads((tmp_path / "reprolock.lock").read_text())
    return {p["name"]: p for p in lock["targets"][0].get("packages", [])}


@pytest.fixture
def pypi(index_server: IndexServer, tmp_path: Path) -> Index:
    """An index with the real build backends and a few sdist-only projects."""
    idx = index_server.add_index("pypi", tmp_path / "pypi")
    for wheel in backend_wheels(tmp_path / "backends", (*SETUPTOOLS, *HATCHLING)):
        idx.add(wheel)
    idx.wheel("six", "1.16.0")
    # like promise 2.3: a setup.py only (the legacy backend), depends on six
    idx.add(make_sdist(tmp_path / "src", "promise", "2.3", backend="legacy", requires=["six"]))
    # like antlr4-python3-runtime 4.9.3: pure Python, declared in pyproject.toml
    idx.add(make_sdist(tmp_path / "src", "antlr4-python3-runtime", "4.9.3"))
    idx.add(make_sdist(tmp_path / "src", "hatched", "1.0", backend="hatchling"))
    return idx


def test_sdist_only_packages_lock_with_their_build_environment(
    lock_cli: LockCli, tmp_path: Path, index_server: IndexServer, pypi: Index
) -> None:
    _spec(tmp_path, ["promise", "antlr4-python3-runtime==4.9.*", "hatched"], index_server)
    started = time.monotonic()
    run = lock_cli("lock")
    cold = time.monotonic() - started
    assert run.code == 0, run.err
    packages = _packages(tmp_path)
    assert set(packages) == {"promise", "six", "antlr4-python3-runtime", "hatched"}
    promise = packages["promise"]
    assert promise["dependencies"] == ["six"]
    assert "wheels" not in promise
    data = (tmp_path / "pypi" / "promise-2.3.tar.gz").read_bytes()
    assert promise["sdist"] == {
        "filename": "promise-2.3.tar.gz",
        "url": index_server.url("pypi").removesuffix("/simple") + "/files/promise-2.3.tar.gz",
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
    }
    build = promise["build"]
    assert build["backend"] == "setuptools.build_meta:__legacy__"
    # the legacy default, then what setuptools' backend asked for
    assert build["requires"][0] == "setuptools>=40.8.0"
    assert build["where"] == "fetch"
    names = sorted(w["filename"].split("-")[0] for w in build["wheels"])
    assert "setuptools" in names
    assert all(len(w["sha256"]) == 64 for w in build["wheels"])
    hatched = packages["hatched"]["build"]
    assert hatched["backend"] == "hatchling.build"
    assert hatched["requires"] == ["hatchling"]
    assert sorted(w["filename"].split("-")[0] for w in hatched["wheels"]) == [
        "hatchling",
        "packaging",
        "pathspec",
        "pluggy",
        "tomlkit",
        "trove_classifiers",
    ]
    lock_text = (tmp_path / "reprolock.lock").read_text()
    assert '\nlock-version = "1.4"\n' in lock_text
    # Warm (the metadata is cached by the sdist's sha256): byte-identical, and fast.
    started = time.monotonic()
    assert lock_cli("lock", "--refresh").code == 0
    warm = time.monotonic() - started
    assert (tmp_path / "reprolock.lock").read_text() == lock_text
    print(f"\nsdist lock: cold {cold:.2f} s, warm {warm:.2f} s")
    # explain says how it is built
    run = lock_cli("explain", "promise")
    assert run.code == 0, run.err
    assert "  chosen: 2.3  promise-2.3.tar.gz\n" in run.out
    assert (
        "  built from its sdist by `reprolock fetch`: pure Python: `reprolock fetch` builds "
        "the wheel\n"
    ) in run.out
    assert "  build backend: setuptools.build_meta:__legacy__ with " in run.out
    assert "setuptools-" in run.out.split("build backend:")[1].split("\n")[0]


def test_refused_sdists_say_why(
    lock_cli: LockCli, tmp_path: Path, index_server: IndexServer, pypi: Index
) -> None:
    _spec(tmp_path, ["promise"], index_server, extra='sdists = "refuse"\n')
    run = lock_cli("lock")
    assert run.code == 3, run.err
    assert (
        "Rejected: 2.3: only an sdist is published, and building it is refused "
        "(python.sdists, no-build, only-build)."
    ) in run.err
    _spec(tmp_path, ["promise"], index_server, extra='no-build = ["promise"]\n')
    assert lock_cli("lock").code == 3


def test_a_failing_build_is_one_paragraph_naming_the_package(
    lock_cli: LockCli, tmp_path: Path, index_server: IndexServer, pypi: Index
) -> None:
    pypi.add(make_sdist(tmp_path / "bad", "brokenpkg", "1.0", backend="legacy", fail=True))
    _spec(tmp_path, ["brokenpkg"], index_server)
    run = lock_cli("lock")
    assert run.code == 4, run.err
    assert "Traceback" not in run.err
    assert "building brokenpkg-1.0.tar.gz failed while preparing its metadata" in run.err
    assert "error: this package cannot be built: tests asked it to fail" in run.err
    assert 'add "brokenpkg" to [python] no-build' in run.err


def test_fetch_builds_the_wheels_and_the_dockerfile_installs_them(
    lock_cli: LockCli, tmp_path: Path, index_server: IndexServer, pypi: Index
) -> None:
    _spec(tmp_path, ["promise", "hatched"], index_server)
    assert lock_cli("lock").code == 0
    started = time.monotonic()
    run = lock_cli("fetch")
    took = time.monotonic() - started
    assert run.code == 0, run.err
    assert "built 2 wheels from locked sdists" in run.out
    here = tmp_path / ".reprolock" / "py3.11-amd64"
    built = json.loads((here / "built.json").read_text())["built"]
    assert sorted(built) == ["hatched", "promise"]
    promise = built["promise"]
    assert promise["filename"] == "promise-2.3-py3-none-any.whl"
    wheel = here / "built" / promise["filename"]
    assert hashlib.sha256(wheel.read_bytes()).hexdigest() == promise["sha256"]
    # Reproducible: built again from scratch, the same bytes.
    wheel.unlink()
    assert lock_cli("fetch").code == 0
    assert json.loads((here / "built.json").read_text())["built"]["promise"] == promise
    # Nothing to do when the wheels are there.
    assert "built" not in lock_cli("fetch").out
    # The Dockerfile (of this lock with a base pinned: the e2e test builds a real one).
    lock = loads((tmp_path / "reprolock.lock").read_text(), file="reprolock.lock").lock
    target = replace(
        lock.targets[0],
        base=LockedBase(ref="debian:bookworm", manifest_digest="sha256:" + "a" * 64),
    )
    lock = replace(lock, targets=(target,))
    wheels = read_built(here)
    requirements = emitted_requirements(target, wheelhouse=False, built=wheels)
    assert (
        "promise @ file:///tmp/reprolock/built/promise-2.3-py3-none-any.whl \\\n"
        f"    --hash=sha256:{promise['sha256']}"
    ) in requirements
    dockerfile = render(lock, target, DockerfileOptions(lock_digest="sha256:" + "b" * 64))
    assert (
        "--mount=type=bind,source=.reprolock/py3.11-amd64/built,target=/tmp/reprolock/built"
        in dockerfile
    )
    assert "!.reprolock/py3.11-amd64/built/" in dockerignore(lock, wheelhouse=False)
    requirements = emitted_requirements(target, wheelhouse=True, built=wheels)
    assert f"promise==2.3 \\\n    --hash=sha256:{promise['sha256']}" in requirements
    options = DockerfileOptions(lock_digest="sha256:" + "b" * 64, wheelhouse=True)
    assert "--find-links /tmp/reprolock/built" in render(lock, target, options)
    # Exports carry the sdist (pip builds it) and, in pylock, the build environment.
    run = lock_cli("export", "requirements")
    sdist_sha = hashlib.sha256((tmp_path / "pypi" / "promise-2.3.tar.gz").read_bytes())
    assert f"promise==2.3 \\\n    --hash=sha256:{sdist_sha.hexdigest()}" in run.out
    pylock = tomllib.loads(lock_cli("export", "pylock").out)
    entry = next(p for p in pylock["packages"] if p["name"] == "promise")
    assert entry["sdist"]["hashes"] == {"sha256": sdist_sha.hexdigest()}
    assert "wheels" not in entry
    assert entry["tool"]["reprolock"]["build-backend"] == "setuptools.build_meta:__legacy__"
    print(f"\nfetch with two sdist builds: {took:.2f} s")


def test_dockerfile_without_fetch_says_to_fetch(
    lock_cli: LockCli, tmp_path: Path, index_server: IndexServer, pypi: Index
) -> None:
    _spec(tmp_path, ["promise"], index_server)
    assert lock_cli("lock").code == 0
    lock = loads((tmp_path / "reprolock.lock").read_text(), file="reprolock.lock").lock
    with pytest.raises(InputError) as caught:
        emitted_requirements(lock.targets[0], wheelhouse=False, built={})
    assert "promise is built from an sdist, and no built wheel is recorded" in str(caught.value)
    assert "Run `reprolock fetch` first" in (caught.value.hint or "")


def test_a_setup_py_naming_ext_modules_that_builds_pure_python_is_built_by_fetch(
    lock_cli: LockCli, tmp_path: Path, index_server: IndexServer, pypi: Index
) -> None:
    # like basicsr: its setup.py names ext_modules, compiled only when asked to
    setup = (
        "import os\nfrom setuptools import setup, Extension\n"
        "ext = [Extension('maybe._c', ['maybe/_c.c'])] if os.environ.get('MAYBE_EXT') else []\n"
        "setup(name='maybe', version='1.0', packages=['maybe'], ext_modules=ext)\n"
    )
    sdist = make_sdist(tmp_path / "m", "maybe", "1.0", backend="legacy", files={"setup.py": setup})
    pypi.add(sdist)
    _spec(tmp_path, ["maybe"], index_server)
    run = lock_cli("lock")
    assert run.code == 0, run.err
    build = _packages(tmp_path)["maybe"]["build"]
    assert build["where"] == "fetch"
    assert build["why"] == (
        "its setup.py declares extension modules (ext_modules), yet it builds "
        "maybe-1.0-py3-none-any.whl: `reprolock fetch` builds the wheel"
    )
