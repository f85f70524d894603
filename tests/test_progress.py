"""The progress line: shown on a terminal while work runs, cleared after; silent otherwise."""

from __future__ import annotations

import time

import pytest

from reprolock.cli.progress import ProgressLine


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
