"""The benchmark scripts start: none shadows a module its siblings import, each answers --help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).parent.parent / "benchmarks"
SCRIPTS = sorted(BENCHMARKS.glob("*.py"))


def test_there_are_benchmarks() -> None:
    assert {p.stem for p in SCRIPTS} >= {"resolve", "scaling", "inspect_image"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_no_benchmark_shadows_a_standard_module(script: Path) -> None:
    # A script's folder comes first on sys.path when it runs, so a sibling named like a
    # standard module (inspect.py) replaces that module for every benchmark.
    assert script.stem not in sys.stdlib_module_names


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_benchmark_answers_help(script: Path) -> None:
    done = subprocess.run(
        [sys.executable, script.name, "--help"],
        cwd=BENCHMARKS,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: ")
