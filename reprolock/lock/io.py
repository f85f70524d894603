"""Reading and writing lock files: atomic replace under an advisory lock.

A write goes to a temporary file in the same directory, is flushed and
fsynced, then renamed over the old file, and the directory is fsynced: a
reader sees the old lock or the new one, never a mix, even if the writer is
killed.  Writers of the same directory take an exclusive ``flock`` on it, so
concurrent runs serialize instead of racing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from reprolock.atomic import replace_file
from reprolock.errors import SourceError


@contextlib.contextmanager
def directory_lock(directory: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``directory`` (blocks until free)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically and durably; the old file survives any crash."""
    directory = path.parent if str(path.parent) else Path()
    try:
        with directory_lock(directory):
            replace_file(path, data, durable=True)
    except OSError as exc:
        raise SourceError(
            f"cannot write {path}: {exc.strerror or exc}.",
            hint="Check that the folder exists and is writable.",
        ) from exc


def read_text(path: Path) -> str:
    """The text of ``path``; `SourceError` if it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(f"{path}: is not UTF-8 text ({exc.reason} at byte {exc.start}).") from exc
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or exc}.") from exc
