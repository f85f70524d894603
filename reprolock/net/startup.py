"""What a reprolock process sets up before it imports the HTTP stack."""

from __future__ import annotations

import os
import sys
import warnings

_DETECTORS = ("charset_normalizer", "chardet")


def without_charset_detection() -> None:
    """Keep requests from importing a character-set detector in this process.

    requests imports charset_normalizer (or chardet) when it is imported, 20-40 ms of every
    start here, to guess the encoding of a text body whose server named none.  reprolock
    never reads a body as text that way: it decodes every body itself (JSON and HTML pages,
    metadata, Packages, manifests), so requests (2.32 and later) is told that neither is
    installed.  Only the process entry points call this (the command line, the page
    workers); a program that imports reprolock as a library keeps requests as it is.
    Nothing is changed once requests or a detector is already imported.
    """
    if any(name in sys.modules for name in ("requests", *_DETECTORS)):
        return
    for name in _DETECTORS:
        sys.modules[name] = None  # type: ignore[assignment]  # import raises ImportError
    warnings.filterwarnings(
        "ignore",
        message="Unable to find acceptable character detection dependency",
        module="requests",
    )


_inherited: frozenset[int] = frozenset()


def open_descriptors() -> frozenset[int] | None:
    """This process's open file descriptors, or None where they cannot be listed (not
    Linux)."""
    try:
        with os.scandir("/proc/self/fd") as entries:
            listed = [int(entry.name) for entry in entries]
    except (OSError, ValueError):
        return None
    return frozenset(fd for fd in listed if _is_open(fd))  # (less the listing's own)


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def note_inherited_descriptors() -> None:
    """Remember the descriptors this process was started with beside its standard streams.

    A shell, a CI runner or an editor may pass some on; no object of this process owns
    them, so a page worker forked from it may close its copies (`inherited_descriptors`).
    Only the process entry point calls this, before it opens anything."""
    global _inherited  # noqa: PLW0603 - once, at start-up
    _inherited = (open_descriptors() or frozenset()) - {0, 1, 2}


def inherited_descriptors() -> frozenset[int]:
    """What `note_inherited_descriptors` found (none when it was not called)."""
    return _inherited
