"""The PEP 517 hook runner: a subprocess with a time limit and bounded output, the
backend's last lines kept for the error."""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import pytest

from reprolock.limits import DEFAULT, install
from reprolock.pep517.hooks import Backend, BuildFailed

BACKEND = """\
import sys, time

def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    if MODE == "slow":
        time.sleep(60)
    for i in range(200_000):
        print(f"line {i} " + "x" * 40)
    print("error: the last words of the backend", file=sys.stderr)
    raise SystemExit(3)
"""


def _backend(tmp_path: Path, mode: str) -> Backend:
    source = tmp_path / "src"
    (source / "_backend").mkdir(parents=True)
    (source / "_backend" / "hook.py").write_text(f"MODE = {mode!r}\n" + BACKEND)
    home = tmp_path / "home"
    home.mkdir()
    return Backend(source, "hook", ["_backend"], Path(sys.executable), home)


def test_a_slow_backend_is_killed_at_the_limit(tmp_path: Path) -> None:
    install(dataclasses.replace(DEFAULT, build_seconds=1.0))
    try:
        started = time.monotonic()
        with pytest.raises(BuildFailed) as caught:
            _backend(tmp_path, "slow").prepare_metadata(tmp_path)
    finally:
        install(DEFAULT)
    assert time.monotonic() - started < 15
    assert caught.value.what == "the build backend ran longer than 1 s (killed)"


def test_a_failing_backend_keeps_its_last_lines_within_the_cap(tmp_path: Path) -> None:
    install(dataclasses.replace(DEFAULT, build_output_bytes=64 * 1024))
    try:
        with pytest.raises(BuildFailed) as caught:
            _backend(tmp_path, "noisy").prepare_metadata(tmp_path)
    finally:
        install(DEFAULT)
    assert caught.value.what == "the build backend exited with status 3"
    lines = caught.value.output.splitlines()
    assert lines[-1] == "error: the last words of the backend"
    assert len(lines) == 12 and lines[-2].startswith("line 199999 ")
