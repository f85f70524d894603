"""A real, non-editable wheel ships matrices/ and schemas/ and finds them."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PROBE = """
import json, reprolock
from reprolock import api, resources
print(json.dumps({
    "file": reprolock.__file__,
    "matrices": api.shipped_matrices().version,
    "gpus": len(api.shipped_matrices().gpus.models),
    "schema": json.loads(api.schema_text("spec"))["title"],
    "starter": resources.starter("gpu.toml").startswith("# reprolock.toml"),
}))
"""
SECONDS = 300  # each step; a hang fails the test with what the step printed so far


def run(args: list[object], **options: object) -> subprocess.CompletedProcess[str]:
    """Run a step of the test; a failure or a hang fails the test with its output."""
    shown = " ".join(str(a) for a in args)
    try:
        done: subprocess.CompletedProcess[str] = subprocess.run(
            [str(a) for a in args],
            capture_output=True,
            text=True,
            check=False,
            timeout=SECONDS,
            **options,  # type: ignore[call-overload]
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{shown} did not finish within {SECONDS}s:\n{exc.stdout!r}\n{exc.stderr!r}")
    if done.returncode != 0:
        pytest.fail(f"{shown} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def dependency_folders() -> list[str]:
    """Where the running interpreter finds reprolock's dependencies: its site folders (a
    venv's own, and the base's when it has --system-site-packages) and the user site."""
    folders = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        folders.append(site.getusersitepackages())
    return [f for f in dict.fromkeys(folders) if Path(f).is_dir()]


@pytest.mark.slow
def test_installed_wheel_finds_its_data(tmp_path: Path) -> None:
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    dist = tmp_path / "dist"
    run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"),
            *("--no-index", "-q", "-w", dist, ROOT),
        ],
        env=env,
    )
    [wheel] = dist.glob("reprolock-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "reprolock/_data/matrices/gpus.toml" in names
    assert "reprolock/_data/schemas/reprolock.schema.json" in names
    assert "reprolock/_data/schemas/matrices/gpus.schema.json" in names
    assert "reprolock/py.typed" in names
    assert "reprolock/starters/cpu.toml" in names

    # A venv of its own (no pip: the running pip installs into it), which finds the
    # dependencies where the running interpreter finds them, never the checkout: a folder
    # named in a .pth file is added as is, the .pth files inside it (an editable install
    # of this checkout) are not read.
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    purelib = run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
    Path(purelib.stdout.strip(), "reprolock-test-deps.pth").write_text(
        "".join(f"{folder}\n" for folder in dependency_folders())
    )
    run(
        [
            *(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps"),
            *("--no-index", wheel),
        ],
        env=env,
    )
    work = tmp_path / "elsewhere"
    work.mkdir()
    clean = {k: v for k, v in env.items() if k != "PYTHONPATH"}
    out = run([python, "-c", PROBE], cwd=work, env=clean)
    facts = json.loads(out.stdout)
    assert facts["file"].startswith(str(venv)), facts  # the wheel, not the checkout
    assert facts["matrices"]
    assert facts["gpus"] > 30
    assert facts["schema"] == "reprolock.toml"
    assert facts["starter"] is True

    example = ROOT / "examples" / "train" / "reprolock.toml"
    run([venv / "bin" / "reprolock", "check", "--spec", example], cwd=work, env=clean)
