"""The progress line: shown on a terminal while work runs, cleared after; silent otherwise."""

from __future__ import annotations

import contextlib
import os
import pty
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from reprolock.cli.progress import ProgressLine, describe, size
from tests.conftest import run_cli
from tests.pyindex import IndexServer

ROOT = Path(__file__).parent.parent


def test_progress_line_counts_requests_and_bytes(capsys: pytest.CaptureFixture[str]) -> None:
    stats = {"pages": 3, "metadata": 2, "ranges": 1, "bytes": 2_500_000}
    with ProgressLine("locking", enabled=True).watch(lambda: stats):
        time.sleep(0.45)
    err = capsys.readouterr().err
    assert "\rlocking: 3 projects, 6 requests, 2.5 MB" in err
    assert err.endswith("\r\x1b[K")


def test_progress_is_silent_in_ci(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    line = ProgressLine.for_terminal("locking", quiet=False)
    assert not line.enabled
    with line.watch(lambda: {"pages": 1}):
        time.sleep(0.3)
    assert capsys.readouterr().err == ""


# -- on a real terminal: `reprolock fetch` in a pseudo-terminal, and in a pipe -------------------


def _fetch_project(tmp_path: Path, index_server: IndexServer) -> Path:
    """A project locked against a loopback index that serves each file over 1.5 s."""
    index = index_server.add_index("slow", tmp_path / "index", slow=1.5)
    index.wheel("alpha", "1.0", payload=400_000)
    project = tmp_path / "project"
    project.mkdir()
    (project / "reprolock.toml").write_text(
        '[environment]\npython = "3.11"\n\n[python]\nrequirements = ["alpha"]\n\n'
        f'[[python.index]]\nname = "slow"\nurl = "{index_server.url("slow")}"\ndefault = true\n'
    )
    run = run_cli("--cache-dir", str(tmp_path / "cache"), "lock", cwd=project)
    assert run.code == 0, run.err
    return project


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "NO_COLOR")}
    env["TERM"] = "xterm"
    env["PYTHONPATH"] = str(ROOT)
    return env


def _in_a_terminal(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run ``reprolock ARGS`` with its standard streams on a pseudo-terminal, as in a shell."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "reprolock", *args],
        cwd=cwd,
        env=_environment(),
        stdin=follower,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    return process.wait(timeout=120), seen.decode(errors="replace")


@pytest.mark.slow
def test_fetch_shows_files_and_bytes_on_a_terminal_and_nothing_in_a_pipe(
    tmp_path: Path, index_server: IndexServer
) -> None:
    project = _fetch_project(tmp_path, index_server)
    fetch = ["--cache-dir", str(tmp_path / "cache"), "fetch"]
    code, shown = _in_a_terminal(fetch, project)
    assert code == 0, shown
    lines = re.findall(r"\rfetching: 0/1 files, ([0-9.]+)/([0-9.]+) kB", shown)
    assert len(lines) >= 3, shown  # redrawn while the file arrives
    assert float(lines[-1][0]) > float(lines[0][0])
    assert {total for _, total in lines} == {lines[0][1]}
    assert "\r\x1b[Kfetched 1 file " in shown  # the line is cleared before the result

    wheels = project / ".reprolock" / "py3.11-amd64" / "wheels"
    shutil.rmtree(wheels)
    piped = subprocess.run(
        [sys.executable, "-m", "reprolock", *fetch],
        cwd=project,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr == ""
    assert piped.stdout.startswith("fetched 1 file ")

    shutil.rmtree(wheels)
    code, shown = _in_a_terminal([*fetch, "-q"], project)
    assert code == 0, shown
    assert "fetching:" not in shown and "\r" not in shown.replace("\r\n", "\n")


class _Recorder:
    """An observer that keeps the last counters it was shown."""

    def __init__(self) -> None:
        self.last: dict[str, int] = {}

    @contextlib.contextmanager
    def watch(self, stats: Callable[[], Mapping[str, int]]) -> Iterator[None]:
        yield
        self.last = dict(stats())


def test_reading_an_image_counts_its_layers_and_bytes(tmp_path: Path) -> None:
    """What inspect, verify and diff show while they read a multi-GB image."""
    from reprolock.api.inspect import InspectOptions, inspect
    from reprolock.cli.lock import net_options
    from reprolock.cli.output import Settings
    from reprolock.model import Platform
    from tests.imagefiles import write_oci_layout
    from tests.test_inspect import realistic_image

    write_oci_layout(tmp_path / "layout", realistic_image())
    recorder = _Recorder()
    options = InspectOptions(platform=Platform.parse("linux/amd64"))
    result = inspect(f"oci:{tmp_path / 'layout'}", options, net_options(Settings()), None, recorder)
    stored = sum(layer.compressed_size for layer in result.image.layers)
    layers = len(result.image.layers)
    assert recorder.last == {
        "layers": layers,
        "layers-done": layers,
        "bytes": stored,
        "bytes-total": stored,
    }
    assert describe(recorder.last) == f"{layers}/{layers} layers, {size(stored, stored)}/" + size(
        stored
    )


def test_describe_reads_like_pip_and_docker() -> None:
    assert (
        describe(
            {"files": 12, "files-total": 40, "bytes": 120_500_000, "bytes-total": 980_200_000}, 3.0
        )
        == "12/40 files, 120.5/980.2 MB, 40.2 MB/s"
    )
    assert describe({"layers": 7, "layers-done": 3, "bytes": 1_234_000_000}) == (
        "3/7 layers, 1.2 GB"
    )
    assert describe({"layers": 0, "bytes": 0, "spooled": 5_000_000}, 2.0) == (
        "5.0 MB from the daemon, 2.5 MB/s"
    )
