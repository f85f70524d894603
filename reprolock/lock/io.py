"""Reading and writing lock files: atomic replace under an advisory lock.

A write goes to a temporary file in the same directory, is flushed and
fsynced, then renamed over the old file, and the directory is fsynced: a
reader sees the old lock or the new one, never a mix, even if the writer is
killed.  Writers of the same directory take an exclusive ``flock`` on it, so
concurrent runs serialize instead of racing.

Reading a spec or a lock is bounded: regular files only, within `limits.document_bytes`,
UTF-8 or an `InputError` naming the byte.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from reprolock import limits
from reprolock.atomic import replace_file
from reprolock.errors import InputError, SourceError


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
    """Replace ``path`` with ``data`` atomically and durably; the old file survives any crash.

    Temporary files of earlier writers of ``path`` that were killed (``.NAME.*.tmp``) are
    removed first: under the folder's lock, no live writer owns one.
    """
    directory = path.parent if str(path.parent) else Path()
    try:
        with directory_lock(directory):
            for leftover in directory.glob(f".{glob.escape(path.name)}.*.tmp"):
                with contextlib.suppress(OSError):
                    leftover.unlink()
            replace_file(path, data, durable=True)
    except OSError as exc:
        raise SourceError(
            f"cannot write {path}: {exc.strerror or exc}.",
            hint="Check that the folder exists and is writable (and the disk not full).",
        ) from exc


def read_bytes(path: Path, *, what: str, limit_name: str = "document_bytes") -> bytes:
    """The bytes of the regular file ``path``, at most ``limits.<limit_name>`` of them.

    A FIFO, a device or a folder is refused without blocking (it is opened with
    ``O_NONBLOCK`` and checked with ``fstat``); a larger file is refused without being
    read whole.  `InputError` for those, `SourceError` when the file cannot be read.
    """
    cap = getattr(limits.current(), limit_name)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise SourceError(
            f"cannot read {path}: {exc.strerror or exc}.",
            hint=f"Check the path of the {what}.",
        ) from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a folder" if stat.S_ISDIR(info.st_mode) else "a FIFO, socket or device"
            raise InputError(
                f"{path}: is {kind}, not a regular file; refusing to read it as the {what}.",
                hint=f"Name the {what} itself, not a pipe, a device or a folder.",
            )
        if info.st_size > cap:
            raise _too_big(path, what, limit_name, info.st_size)
        chunks: list[bytes] = []
        received = 0
        while received <= cap:
            chunk = os.read(fd, min(1 << 20, cap + 1 - received))
            if not chunk:
                break
            chunks.append(chunk)
            received += len(chunk)
        if received > cap:
            raise _too_big(path, what, limit_name, received)
        return b"".join(chunks)
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or exc}.") from exc
    finally:
        os.close(fd)


def _too_big(path: Path, what: str, limit_name: str, size: int) -> InputError:
    error = limits.exceeded(f"{path} (the {what})", limit_name, actual=f"{size} bytes")
    return InputError(error.message, hint=error.hint)


def decode(path: Path, data: bytes) -> str:
    """``data`` as UTF-8 text; `InputError` naming the file and the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: is not UTF-8 text (at byte offset {exc.start}: "
            f"0x{data[exc.start]:02x}, {exc.reason}).",
            hint="Save the file as UTF-8.",
        ) from None


def read_text(path: Path, *, what: str, limit_name: str = "document_bytes") -> str:
    """The UTF-8 text of the regular file ``path``, within its cap (see `read_bytes`)."""
    return decode(path, read_bytes(path, what=what, limit_name=limit_name))


def read_stream(
    stream: IO[bytes], *, name: str, what: str, limit_name: str = "document_bytes"
) -> bytes:
    """The bytes of ``stream`` (standard input, a pipe) to its end, at most
    ``limits.<limit_name>``; the stream is left open. `InputError` when it holds more,
    `SourceError` when it cannot be read."""
    cap = getattr(limits.current(), limit_name)
    chunks: list[bytes] = []
    received = 0
    try:
        while received <= cap:
            chunk = stream.read(min(1 << 20, cap + 1 - received))
            if not chunk:
                break
            chunks.append(chunk)
            received += len(chunk)
    except OSError as exc:
        raise SourceError(f"cannot read {name}: {exc.strerror or exc}.") from exc
    if received > cap:
        raise _too_big(Path(name), what, limit_name, received)
    return b"".join(chunks)


def read_pipe(path: Path, *, what: str, limit_name: str = "document_bytes") -> bytes:
    """The bytes a FIFO ``path`` (``/dev/fd/63`` of a ``<(command)``) delivers, within
    ``limits.<limit_name>``; a regular file is read by `read_bytes`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise SourceError(
            f"cannot read {path}: {exc.strerror or exc}.", hint=f"Check the path of the {what}."
        ) from exc
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            return read_bytes(path, what=what, limit_name=limit_name)
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            raise InputError(
                f"{path}: is not a pipe or a regular file; refusing to read it as the {what}.",
                hint=f"Name the {what} itself.",
            )
        with os.fdopen(os.dup(fd), "rb", buffering=0) as stream:
            return read_stream(stream, name=str(path), what=what, limit_name=limit_name)
    finally:
        os.close(fd)


GIT_SECONDS = 60.0  # the longest `git cat-file` may take


def read_at_revision(
    revision: str, path: str, *, cwd: Path, what: str, limit_name: str = "document_bytes"
) -> bytes:
    """The file ``path`` (relative to ``cwd``) as commit ``revision`` of the git repository
    around ``cwd`` holds it, within ``limits.<limit_name>``. `InputError` when git does not
    know the revision or the file there, `SourceError` when git cannot be run."""
    shown = f"git:{revision}:{path}"
    if not revision or revision.startswith("-") or any(c.isspace() for c in revision):
        raise InputError(
            f"{shown}: {revision!r} is not a git revision.",
            hint="Write git:REV[:PATH], e.g. git:HEAD~1 or git:main:reprolock.lock.",
        )
    if not path or path.startswith("/"):
        raise InputError(
            f"{shown}: the path must be relative to the current folder.",
            hint="Write git:REV:PATH with PATH as you would name the file here.",
        )
    name = f"{revision}:./{path}"  # "./": relative to cwd, as git resolves it
    cap = getattr(limits.current(), limit_name)
    size = _git(["cat-file", "-s", name], cwd=cwd, shown=shown, what=what).strip()
    if not size.isdigit():
        raise SourceError(f"{shown}: git answered {size[:100]!r} for the size of the {what}.")
    if int(size) > cap:
        raise _too_big(Path(shown), what, limit_name, int(size))
    return _git(["cat-file", "blob", name], cwd=cwd, shown=shown, what=what)


def _git(args: list[str], *, cwd: Path, shown: str, what: str) -> bytes:
    """What ``git -C cwd ARGS`` prints; its last error line as an `InputError`."""
    try:
        done = subprocess.run(
            ["git", "-C", str(cwd), *args],
            capture_output=True,
            check=False,
            timeout=GIT_SECONDS,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"},
        )
    except FileNotFoundError:
        raise SourceError(
            f"{shown}: git is not installed.", hint=f"Install git, or name the {what} as a file."
        ) from None
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SourceError(f"{shown}: running git failed ({exc}).") from None
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip().splitlines()
        raise InputError(
            f"{shown}: git cannot show it: "
            f"{said[-1].rstrip('.') if said else f'exit {done.returncode}'}.",
            hint="Check the revision (git log) and the path (git ls-tree -r REV).",
        )
    return done.stdout
