"""A real, non-editable wheel ships matrices/ and schemas/ and finds them."""

from __future__ import annotations

import os
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


@pytest.mark.slow
def test_installed_wheel_finds_its_data(tmp_path: Path) -> None:
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(dist),
            str(ROOT),
        ],
        check=True,
        env=env,
    )
    [wheel] = dist.glob("reprolock-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "reprolock/_data/matrices/gpus.toml" in names
    assert "reprolock/_data/schemas/reprolock.schema.json" in names
    assert "reprolock/_data/schemas/matrices/gpus.schema.json" in names
    assert "reprolock/py.typed" in names
    assert "reprolock/starters/cpu.toml" in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        env=env,
    )
    work = tmp_path / "elsewhere"
    work.mkdir()
    out = subprocess.run(
        [python, "-c", PROBE],
        cwd=work,
        check=True,
        capture_output=True,
        text=True,
        env={k: v for k, v in env.items() if k != "PYTHONPATH"},
    )
    import json

    facts = json.loads(out.stdout)
    assert facts["file"].startswith(str(venv)), facts  # the wheel, not the checkout
    assert facts["matrices"]
    assert facts["gpus"] > 30
    assert facts["schema"] == "reprolock.toml"
    assert facts["starter"] is True

    example = ROOT / "examples" / "train" / "reprolock.toml"
    run = subprocess.run(
        [venv / "bin" / "reprolock", "check", "--spec", str(example)],
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
