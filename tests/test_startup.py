"""What a reprolock process sets up before the HTTP stack: no character-set detector."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

_SPEC = """[environment]
python = "3.11"
platforms = ["linux/amd64"]

[python]
requirements = ["six"]

[[python.index]]
name = "local"
url = "http://127.0.0.1:9/simple"
default = true
"""


def _python(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=cwd, check=False, timeout=60
    )


def _imported(importtime: str) -> set[str]:
    return {
        line.rsplit("|", 1)[1].strip()
        for line in importtime.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def test_requests_works_without_a_detector_and_warns_nothing() -> None:
    code = (
        "import sys\n"
        "from reprolock.net.startup import without_charset_detection\n"
        "without_charset_detection()\n"
        "import requests\n"
        "assert requests.compat.chardet is None\n"
        "response = requests.Response()\n"
        "response._content = b'{\"a\": 1}'\n"
        "assert response.json() == {'a': 1}\n"
    )
    run = _python("-W", "error", "-c", code)
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""


def test_a_program_that_imported_requests_first_keeps_its_detector() -> None:
    pytest.importorskip("charset_normalizer")
    code = (
        "import sys, requests\n"
        "from reprolock.net.startup import without_charset_detection\n"
        "without_charset_detection()\n"
        "assert sys.modules['charset_normalizer'] is not None\n"
        "import charset_normalizer.api\n"
    )
    run = _python("-c", code)
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize("entry", ["command line", "page worker"])
def test_entry_points_import_requests_without_a_detector(entry: str, tmp_path: Path) -> None:
    if entry == "command line":
        (tmp_path / "reprolock.toml").write_text(_SPEC)
        # the index cannot be reached: requests is imported, then the lock fails
        args = ["-m", "reprolock", "--cache-dir", str(tmp_path / "cache"), "lock"]
    else:  # --preload imports the fetching stack, then the closed input ends it
        args = ["-m", "reprolock.resolve.python.page_parse", "--preload"]
    run = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        check=False,
        timeout=60,
    )
    imported = _imported(run.stderr)
    assert "requests" in imported, run.stderr[-2000:]
    assert not {m for m in imported if m.startswith(("charset_normalizer.", "chardet."))}
    assert "Unable to find acceptable character detection" not in run.stderr
