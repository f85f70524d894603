"""Opening the files an image source reads: regular files only, never through a link
out of their folder, never a FIFO or a device; and bounded windows onto them.

A FIFO or ``/dev/zero`` named by a hostile layout would block or never end, a symbolic
link would read a file outside it: every file is opened with ``O_NOFOLLOW`` (where a
link is not wanted) and ``O_NONBLOCK`` (opening a FIFO does not wait for a writer), and
refused unless ``fstat`` says it is a regular file.  Temporary files are unlinked as
soon as they are created, so nothing is left behind, even by a killed process.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import tempfile
from pathlib import Path
from typing import IO, cast

from reprolock.errors import SourceError

_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC


def open_regular(path: Path, what: str, *, follow: bool = True) -> IO[bytes]:
    """``path`` opened for reading; `SourceError` unless it is a regular file (after
    following a link, only when ``follow``).  A missing file raises FileNotFoundError."""
    flags = _FLAGS if follow else _FLAGS | os.O_NOFOLLOW
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow:
            raise SourceError(
                f"{what}: {path} is a symbolic link; refusing to follow it.",
                hint="Image files must be regular files inside the image's folder.",
            ) from None
        raise SourceError(f"{what}: cannot open {path} ({exc.strerror}).") from None
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        mode = 0
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise SourceError(
            f"{what}: {path} is not a regular file ({_kind(mode)}); refusing to read it.",
            hint="Image files must be regular files.",
        )
    return os.fdopen(fd, "rb")


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a file"


def inside(root: Path, relative: str, what: str) -> Path:
    """``root / relative`` after checking that its folders resolve inside ``root``
    (the last component is opened with ``O_NOFOLLOW`` by the caller)."""
    folder, _, leaf = relative.rpartition("/")
    real_root = root.resolve()
    real_folder = (real_root / folder).resolve() if folder else real_root
    if not real_folder.is_relative_to(real_root) or leaf in ("", ".", ".."):
        raise SourceError(
            f"{what}: {relative} leads out of {root}; refusing to read it.",
            hint="Image files must be regular files inside the image's folder.",
        )
    return real_folder / leaf


def spool() -> IO[bytes]:
    """A private temporary file with no name (unlinked at once): read and written
    through its descriptor, gone when closed or when the process ends, however."""
    return cast(IO[bytes], tempfile.TemporaryFile(prefix="reprolock-"))


class Window(io.RawIOBase):
    """``length`` bytes of an open file from ``offset``, read with ``pread``: any number
    of windows onto one descriptor can be read at once, from any threads.  ``read`` returns
    the bytes ``pread`` made and ``readinto`` reads straight into the caller's buffer
    (``preadv``): the kernel's copy is the only one."""

    def __init__(
        self, fd: int, offset: int, length: int, what: str, owner: IO[bytes] | None = None
    ) -> None:
        self.fd = fd
        self.position = offset
        self.left = length
        self.what = what
        self.owner = owner  # closed with the window

    def close(self) -> None:
        if self.owner is not None:
            self.owner.close()
        super().close()

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        want = min(size, self.left)
        if want <= 0:
            return b""
        data = os.pread(self.fd, want, self.position)
        self._advance(len(data))
        return data

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        with memoryview(buffer) as view:
            want = min(view.nbytes, self.left)
            if want <= 0:
                return 0
            with view.cast("B")[:want] as target:
                got = os.preadv(self.fd, [target], self.position)
        self._advance(got)
        return got

    def _advance(self, got: int) -> None:
        if not got:
            raise SourceError(
                f"{self.what}: the file ends {self.left} bytes early.",
                hint="The file is truncated; make it again.",
            )
        self.position += got
        self.left -= got


def window(
    fd: int,
    offset: int,
    length: int,
    what: str,
    *,
    owner: IO[bytes] | None = None,
    buffered: bool = True,
) -> IO[bytes]:
    """A `Window` (closing it closes ``owner``, the file ``fd`` belongs to): buffered for
    readers of small pieces; unbuffered (``buffered=False``) for those that read in large
    steps, such as a layer scan, whose every read is then one ``pread``."""
    raw = Window(fd, offset, length, what, owner)
    return cast(IO[bytes], io.BufferedReader(raw, 1 << 20) if buffered else raw)
