"""Opt-in checks against live PyPI: `python -m pytest -m live` (never selected in CI)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tests.conftest import Cli

pytestmark = pytest.mark.live


def test_live_pypi_lock_for_arm64_from_any_host(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "reprolock.toml").write_text(
        '[environment]\npython = "3.11"\nplatforms = ["linux/arm64"]\n'
        '[python]\nrequirements = ["numpy==2.1.3", "requests"]\n'
    )
    run = cli("--cache-dir", str(tmp_path / "cache"), "lock", cwd=tmp_path)
    assert run.code == 0, run.err
    lock = tomllib.loads((tmp_path / "reprolock.lock").read_text())
    numpy = next(p for p in lock["targets"][0]["packages"] if p["name"] == "numpy")
    [wheel] = numpy["wheels"]
    assert "aarch64" in wheel["filename"] and "cp311" in wheel["filename"]
    assert len(wheel["sha256"]) == 64
