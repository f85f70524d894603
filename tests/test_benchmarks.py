"""The benchmark scripts start: none shadows a module its siblings import, each answers --help."""

from __future__ import annotations

import importlib.util
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


def test_every_cold_run_gets_a_cache_never_used_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cold run's cache is a new folder, not the last run's deleted and made again (deleting
    a thousand files just before slowed the next run's own file creations), and the run's
    caches go once nothing is timed."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location("bench_resolve", BENCHMARKS / "resolve.py")
    assert spec is not None and spec.loader is not None
    resolve = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_resolve", resolve)  # (its dataclasses look it up)
    spec.loader.exec_module(resolve)  # the benchmark script, as a module

    folder = tmp_path / "torch"
    first = resolve.fresh_cache(folder, "reprolock")
    (first / "entry").write_text("x")
    second = resolve.fresh_cache(folder, "reprolock")
    assert first != second and first.is_dir() and second.is_dir()
    assert not any(second.iterdir())
    assert (first / "entry").exists()  # not deleted by the next run
    resolve.drop_caches(tmp_path)
    assert not first.exists() and not second.exists() and folder.exists()
