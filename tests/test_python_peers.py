"""reprolock's Python layer against real peers: pip-compile as an oracle, pip as installer."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Run
from tests.pyindex import IndexServer

PIP_ENV = {
    **os.environ,
    "PIP_CONFIG_FILE": os.devnull,
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PIP_NO_INPUT": "1",
}
PIP_ENV.pop("PIP_CONSTRAINT", None)


def _graph(index: Any) -> None:
    """A graph with markers, extras, requires-python, yanked files and backtracking."""
    index.wheel("web", "1.0", requires=["router>=1", "util"], extras={"json": ["fastjson"]})
    index.wheel(
        "web",
        "2.0",
        requires=["router>=2", "util<3", 'compat; python_version < "3.12"'],
        extras={"json": ["fastjson>=1.1"]},
    )
    index.wheel("router", "1.0", requires=["util"])
    index.wheel("router", "2.0", requires=["util>=2"])
    index.wheel("router", "2.1", requires=["util>=2", 'winonly; sys_platform == "win32"'])
    index.wheel("util", "1.0")
    index.wheel("util", "2.0")
    index.wheel("util", "2.5")
    index.wheel("util", "3.0")
    index.wheel("compat", "1.0")
    index.wheel("winonly", "1.0")
    index.wheel("fastjson", "1.0")
    index.wheel("fastjson", "1.1", requires_python=">=3.8")
    index.wheel("fastjson", "1.2", yanked="bad")
    index.wheel("fastjson", "1.3", requires_python=">=3.13")
    index.wheel("cli-kit", "1.0", requires=["util<2.5"])
    index.wheel("mathy", "1.0", tag="cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64")
    index.wheel("mathy", "1.0", tag="cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64")


REQUIREMENTS = ["web[json]", "cli-kit", "mathy"]


def _lock(lock_cli: Any, tmp_path: Path, server: IndexServer, platforms: str) -> Run:
    (tmp_path / "reprolock.toml").write_text(
        f'[environment]\npython = "3.11"\nplatforms = [{platforms}]\n[python]\n'
        f"requirements = {REQUIREMENTS!r}\n".replace("'", '"')
        + f'[[python.index]]\nname = "local"\nurl = "{server.url("local")}"\ndefault = true\n'
    )
    run: Run = lock_cli("lock")
    assert run.code == 0, run.err
    return run


@pytest.mark.slow
def test_pins_equal_pip_compile_for_a_host_like_target(
    lock_cli: Any, tmp_path: Path, index_server: IndexServer
) -> None:
    if shutil.which("pip-compile") is None:
        pytest.skip("pip-tools is not installed")
    _graph(index_server.add_index("local", tmp_path / "local"))
    _lock(lock_cli, tmp_path, index_server, '"linux/amd64"')
    lock = tomllib.loads((tmp_path / "reprolock.lock").read_text())
    ours = {
        p["name"]: (p["version"], p["wheels"][0]["sha256"]) for p in lock["targets"][0]["packages"]
    }

    (tmp_path / "requirements.in").write_text("\n".join(REQUIREMENTS) + "\n")
    subprocess.run(
        [
            "pip-compile",
            "--quiet",
            "--generate-hashes",
            "--no-header",
            "--no-annotate",
            "--index-url",
            index_server.url("local"),
            "--cache-dir",
            str(tmp_path / "pipcache"),
            "--output-file",
            str(tmp_path / "requirements.txt"),
            str(tmp_path / "requirements.in"),
        ],
        check=True,
        env=PIP_ENV,
        cwd=tmp_path,
        capture_output=True,
    )
    text = (tmp_path / "requirements.txt").read_text().replace("\\\n", " ")
    theirs: dict[str, tuple[str, set[str]]] = {}
    for line in text.splitlines():
        match = re.match(r"^([a-z0-9-]+)(?:\[[^\]]*\])?==(\S+)(.*)$", line.strip())
        if match:
            theirs[match.group(1)] = (match.group(2), set(re.findall(r"sha256:(\w+)", line)))
    assert {n: v for n, (v, _) in ours.items()} == {n: v for n, (v, _) in theirs.items()}
    for name, (_version, sha) in ours.items():
        assert sha in theirs[name][1], name


@pytest.mark.slow
def test_exported_requirements_install_with_require_hashes(
    lock_cli: Any, tmp_path: Path, index_server: IndexServer
) -> None:
    _graph(index_server.add_index("local", tmp_path / "local"))
    _lock(lock_cli, tmp_path, index_server, '"linux/amd64", "linux/arm64"')
    run = lock_cli("export", "requirements", "--target", "py3.11-amd64", "-o", "req.txt")
    assert run.code == 0, run.err
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip"]
    subprocess.run(
        [*pip, "install", "-q", "--no-deps", "--require-hashes", "-r", str(tmp_path / "req.txt")],
        check=True,
        env=PIP_ENV,
    )
    subprocess.run([*pip, "check"], check=True, env=PIP_ENV)
    frozen = subprocess.run(
        [*pip, "freeze"], check=True, env=PIP_ENV, capture_output=True, text=True
    ).stdout
    assert "web==2.0" in frozen and "compat==1.0" in frozen and "winonly" not in frozen

    run = lock_cli("export", "requirements", "--target", "py3.11-amd64", "--urls")
    assert run.code == 0
    assert "mathy @ http://127.0.0.1:" in run.out
    assert run.out.count("--hash=sha256:") == len(frozen.splitlines())


def test_exported_pylock_is_valid_pep_751(
    lock_cli: Any, tmp_path: Path, index_server: IndexServer
) -> None:
    from packaging.pylock import Pylock

    _graph(index_server.add_index("local", tmp_path / "local"))
    _lock(lock_cli, tmp_path, index_server, '"linux/arm64"')
    run = lock_cli("export", "pylock")
    assert run.code == 0, run.err
    pylock = Pylock.from_dict(tomllib.loads(run.out))
    names = {p.name for p in pylock.packages}
    assert names == {"web", "router", "util", "compat", "fastjson", "cli-kit", "mathy"}
    mathy = next(p for p in pylock.packages if p.name == "mathy")
    assert mathy.wheels is not None
    assert [w.name for w in mathy.wheels] == [
        "mathy-1.0-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"
    ]
    assert pylock.environments is not None
    assert str(pylock.environments[0]) == (
        'sys_platform == "linux" and platform_machine == "aarch64" and python_version == "3.11"'
    )


def test_export_needs_a_target_when_there_are_several(
    lock_cli: Any, tmp_path: Path, index_server: IndexServer
) -> None:
    _graph(index_server.add_index("local", tmp_path / "local"))
    _lock(lock_cli, tmp_path, index_server, '"linux/amd64", "linux/arm64"')
    run = lock_cli("export", "requirements")
    assert run.code == 2
    assert run.err == (
        "error: reprolock.lock: has 2 targets; say which with --target.\n"
        "Targets: py3.11-amd64, py3.11-arm64.\n"
    )
    run = lock_cli("export", "pylock", "--target", "py3.11-s390x")
    assert run.code == 2
    assert 'has no target "py3.11-s390x"' in run.err
