"""Atomic lock writes: a killed writer leaves the old lock; concurrent writers never corrupt."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from reprolock.errors import SourceError
from reprolock.lock.io import write_atomic

ROOT = Path(__file__).parent.parent

# The writer pauses at a chosen point, says so, and waits to be killed.
WRITER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from reprolock.lock import io

    path, stage = Path(sys.argv[1]), sys.argv[2]
    data = b"NEW " * 1_000_000

    def pause(*args, **kwargs):
        print("paused", flush=True)
        time.sleep(60)

    if stage == "write":
        real_fdopen = os.fdopen

        class HalfWriter:
            def __init__(self, handle):
                self.handle = handle
            def __enter__(self):
                return self
            def __exit__(self, *exc):
                self.handle.close()
            def write(self, chunk):
                self.handle.write(chunk[: len(chunk) // 2])
                self.handle.flush()
                pause()
            def flush(self):
                pass
            def fileno(self):
                return self.handle.fileno()

        io.os.fdopen = lambda fd, mode: HalfWriter(real_fdopen(fd, mode))
    elif stage == "fsync":
        io.os.fsync = pause
    elif stage == "replace":
        io.os.replace = pause
    io.write_atomic(path, data)
    """
)


@pytest.mark.parametrize("stage", ["write", "fsync", "replace"])
def test_sigkill_mid_write_keeps_the_previous_lock(tmp_path: Path, stage: str) -> None:
    lock = tmp_path / "reprolock.lock"
    old = b'lock-version = "1.0"\n# the previous lock\n'
    lock.write_bytes(old)
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(lock), stage],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "paused"
    # The writer is mid-way: a temporary file exists beside the lock.
    assert any(p.name.startswith(".reprolock.lock.") for p in tmp_path.iterdir())
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert lock.read_bytes() == old
    # A later writer succeeds and replaces it whole; the dead writer's temporary file goes.
    write_atomic(lock, b"fresh\n")
    assert lock.read_bytes() == b"fresh\n"
    assert [p.name for p in tmp_path.iterdir()] == ["reprolock.lock"]


CONCURRENT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from reprolock.lock.io import write_atomic

    path, marker = Path(sys.argv[1]), sys.argv[2]
    body = (marker * 200_000).encode()
    for i in range(20):
        write_atomic(path, body + f"\\n{i}\\n".encode())
    """
)


def test_concurrent_writers_never_corrupt(tmp_path: Path) -> None:
    lock = tmp_path / "reprolock.lock"
    lock.write_bytes(b"A" * 200_000 + b"\n0\n")
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT, str(lock), marker],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        for marker in "ABCD"
    ]
    seen = 0
    deadline = time.monotonic() + 60
    while any(w.poll() is None for w in writers) and time.monotonic() < deadline:
        data = lock.read_bytes()
        body, _, tail = data.partition(b"\n")
        assert len(body) == 200_000 and len(set(body)) == 1, "reader saw a mixed file"
        assert tail.rstrip(b"\n").isdigit()
        seen += 1
    for w in writers:
        assert w.wait(timeout=60) == 0
    assert seen > 0
    final = lock.read_bytes()
    assert len(set(final.partition(b"\n")[0])) == 1
    assert final.endswith(b"\n19\n")
    assert [p.name for p in tmp_path.iterdir()] == ["reprolock.lock"]


def test_keeps_the_file_mode(tmp_path: Path) -> None:
    lock = tmp_path / "reprolock.lock"
    lock.write_bytes(b"x")
    lock.chmod(0o640)
    write_atomic(lock, b"y")
    assert lock.stat().st_mode & 0o777 == 0o640


def test_unwritable_folder_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot write"):
        write_atomic(tmp_path / "missing" / "reprolock.lock", b"x")
