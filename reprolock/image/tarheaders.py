"""Tar headers read within bounds, for layers and for image archives alike.

`tarfile` reads a pax header or a GNU long name whole, whatever size it claims, chains
them by recursion, merges global pax headers without end, and follows sparse maps to
the end of the stream.  `TarInfo` refuses those before `tarfile` acts on them, and
`members` turns every way `tarfile` can fail into one `SourceError`.
"""

from __future__ import annotations

import tarfile
import types
from collections.abc import Callable, Iterator
from typing import IO, Any

from reprolock import limits
from reprolock.errors import SourceError

_EXTENDED = frozenset(
    {
        tarfile.GNUTYPE_LONGNAME,
        tarfile.GNUTYPE_LONGLINK,
        tarfile.XHDTYPE,
        tarfile.XGLTYPE,
        tarfile.SOLARIS_XHDTYPE,
    }
)


class Refused(Exception):
    """A header reprolock will not read (raised through `tarfile`, caught by `members`)."""

    def __init__(self, message: str, limit_name: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.limit_name = limit_name


_HIGH_BYTES = bytes(range(128, 256))


def header_checksums(buf: bytes) -> tuple[int, int]:
    """The (unsigned, signed) sums a 512-byte tar header's checksum field may hold, its own 8
    bytes counted as spaces: `tarfile.calc_chksums`'s pair, from two slices summed in C
    rather than 504 bytes unpacked into two tuples (2.3 µs a header instead of 7.2: an ML
    image's layers hold ~50,000 headers, walked on the thread every file waits for)."""
    head, tail = buf[:148], buf[156:512]
    unsigned = 256 + sum(head) + sum(tail)
    high = 504 - len(head.translate(None, _HIGH_BYTES)) - len(tail.translate(None, _HIGH_BYTES))
    return unsigned, unsigned - 256 * high


def _frombuf_checked_by(checksums: Callable[[bytes], tuple[int, int]]) -> Any:
    """`tarfile.TarInfo.frombuf`, tarfile's own code, with ``checksums`` in place of the
    module function it calls (`tarfile.calc_chksums`); None when that code calls no such
    function (another Python's tarfile), and tarfile's own is kept."""
    original = tarfile.TarInfo.frombuf.__func__  # type: ignore[attr-defined]
    if "calc_chksums" not in original.__code__.co_names:
        return None
    scope = {**original.__globals__, "calc_chksums": checksums}
    return types.FunctionType(
        original.__code__, scope, original.__name__, original.__defaults__, original.__closure__
    )


_FROMBUF = _frombuf_checked_by(header_checksums)


class TarInfo(tarfile.TarInfo):
    """`tarfile.TarInfo` with extended headers bounded and sparse files refused, and headers
    decoded by tarfile's code with a faster checksum sum (`header_checksums`)."""

    if _FROMBUF is not None:
        frombuf: Any = classmethod(_FROMBUF)

    def _proc_member(self, archive: tarfile.TarFile) -> tarfile.TarInfo:
        cap = limits.current().tar_header_bytes
        if self.type in _EXTENDED and self.size > cap:
            raise Refused(f"an extended header of {self.size} bytes", "tar_header_bytes")
        if self.type == tarfile.GNUTYPE_SPARSE:
            raise _sparse()
        member: tarfile.TarInfo = super()._proc_member(archive)  # type: ignore[misc]
        if (
            self.type == tarfile.XGLTYPE
            and sum(len(k) + len(v) for k, v in archive.pax_headers.items()) > cap
        ):
            raise Refused("its global pax headers", "tar_header_bytes")
        return member

    def _proc_gnusparse_00(self, *args: object) -> None:
        raise _sparse()

    def _proc_gnusparse_01(self, *args: object) -> None:
        raise _sparse()

    def _proc_gnusparse_10(self, *args: object) -> None:
        raise _sparse()


def _sparse() -> Refused:
    return Refused("a sparse file (no image tool writes them)")


def open_tar(
    fileobj: IO[bytes], what: str, *, hint: str, stream: bool = True, bufsize: int = 64 * 1024
) -> tarfile.TarFile:
    """A tar over ``fileobj`` with bounded headers: read front to back (``r|``) when
    ``stream``, else seekable (``r:``, members keep their data offsets).  Names that are
    not UTF-8 get U+FFFD for their bad bytes (tarfile's default, surrogate escapes, would
    make every later print of such a name fail)."""
    try:
        if stream:
            return tarfile.open(
                fileobj=fileobj,
                mode="r|",
                bufsize=bufsize,
                tarinfo=TarInfo,
                encoding="utf-8",
                errors="replace",
            )
        return tarfile.open(
            fileobj=fileobj, mode="r:", tarinfo=TarInfo, encoding="utf-8", errors="replace"
        )
    except _FAILURES as exc:
        raise _error(exc, what, hint, first=True) from None


def members(tar: tarfile.TarFile, what: str, *, hint: str) -> Iterator[tarfile.TarInfo]:
    """The members of ``tar`` one by one; `SourceError` for anything malformed.

    ``tar.members`` is emptied as it goes: nothing here needs the members seen so far,
    and a tar of a million empty files would otherwise keep a million headers.
    """
    while True:
        try:
            member = tar.next()
        except _FAILURES as exc:
            raise _error(exc, what, hint) from None
        tar.members.clear()  # type: ignore[attr-defined]  # (not in typeshed)
        if member is None:
            return
        yield member


_FAILURES = (Refused, tarfile.TarError, EOFError, OSError, ValueError, IndexError, RecursionError)


def _error(exc: BaseException, what: str, hint: str, *, first: bool = False) -> SourceError:
    if isinstance(exc, Refused):
        if exc.limit_name is not None:
            return limits.exceeded(f"{what}: {exc.message}", exc.limit_name)
        return SourceError(f"{what}: holds {exc.message}; refusing it.", hint=hint)
    if first and isinstance(exc, tarfile.ReadError):
        return SourceError(f"{what}: is not a readable tar archive ({exc}).", hint=hint)
    detail = str(exc)[:200] or type(exc).__name__
    return SourceError(f"{what}: the tar stream is corrupt or truncated ({detail}).", hint=hint)
