"""Shared helpers: run the CLI in-process and capture exit code and output."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from reprolock.cli import output
from reprolock.cli.main import main
from tests import realparts

# Property-based tests (hypothesis) run with a fixed seed and a small budget in CI:
# each suite's examples are derandomized, so a run is repeatable, and all of them
# together stay well under a minute.
settings.register_profile(
    "reprolock",
    derandomize=True,
    deadline=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
settings.load_profile("reprolock")


@dataclass
class Run:
    code: int
    out: str
    err: str


Cli = Callable[..., Run]
Project = Callable[..., Path]


def run_cli(*args: str, cwd: Path) -> Run:
    """Run ``reprolock ARGS`` in-process in ``cwd`` without pytest fixtures (for module-scoped
    fixtures)."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    previous = Path.cwd()
    os.chdir(cwd)
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(list(args))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        os.chdir(previous)
        output.install(output.Settings())
    return Run(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    """Run ``reprolock ARGS`` in-process in a folder; return exit code and output."""

    def run(*args: str, cwd: Path | None = None) -> Run:
        capsys.readouterr()
        if cwd is not None:
            monkeypatch.chdir(cwd)
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        else:  # pragma: no cover - main always exits
            code = 0
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    yield run
    output.install(output.Settings())


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """Write a spec into a fresh folder and return its path."""

    def write(text: str, name: str = "reprolock.toml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


MINIMAL = """\
[environment]
python = "3.11"

[python]
requirements = ["numpy"]
"""


@pytest.fixture(autouse=True)
def _no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("REPROLOCK_CACHE_DIR", raising=False)
    os.environ.pop("FORCE_COLOR", None)


@pytest.fixture
def index_server() -> Iterator[object]:
    """A loopback Python index server; add indexes with ``server.add_index``."""
    from tests.pyindex import serve

    yield from serve()


@pytest.fixture
def lock_cli(cli: Cli, tmp_path: Path) -> Callable[..., Run]:
    """``reprolock lock`` (or another command) in ``tmp_path`` with a private cache."""

    def run(*args: str) -> Run:
        return cli("--cache-dir", str(tmp_path / "cache"), *args, cwd=tmp_path)

    return run


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A real docker-registry on 127.0.0.1 for the whole session (stopped at the end)."""
    from tests.ociregistry import Registry

    realparts.require("docker-registry")
    server = Registry(tmp_path_factory.mktemp("registry"))
    yield server
    server.stop()


@pytest.fixture
def front(registry: object) -> Iterator[object]:
    """A loopback front of the registry: token auth or failures, per test."""
    from tests.ociregistry import Registry, start_front

    assert isinstance(registry, Registry)
    yield from start_front(registry)


@pytest.fixture(scope="session")
def dockerd(registry: object) -> Iterator[object]:
    """A real dockerd on a private unix socket, with a Debian base image imported; the
    session's registry is its docker.io mirror (FROM python:… builds from it, offline)."""
    from tests import dockerd as engine
    from tests.ociregistry import Registry

    realparts.require("dockerd", "docker", "debootstrap")
    if os.geteuid() != 0:
        pytest.skip("dockerd and debootstrap run as root: run the tests as root")
    assert isinstance(registry, Registry)
    engine.sweep()  # what an interrupted run left: stopped dockerds' folders and mounts
    for daemon in engine.start((registry.url,)):
        daemon.import_base()
        yield daemon


# Lines tests want in the CI log (measurements, e.g. image sizes), printed after the run.
SUMMARY: list[str] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if SUMMARY:
        terminalreporter.section("reprolock measurements")
        for line in SUMMARY:
            terminalreporter.write_line(line)
    skipped = terminalreporter.stats.get("skipped", [])
    found = realparts.summary_line(_skip_reason(report) for report in skipped)
    if found is not None:
        terminalreporter.write_line(found, yellow=True, bold=True)


def _skip_reason(report: Any) -> str:
    longrepr = getattr(report, "longrepr", None)
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr or "")
