"""What a reprolock process sets up before it imports the HTTP stack."""

from __future__ import annotations

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
