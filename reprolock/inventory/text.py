"""Text read from an image's files, made safe to parse and to print.

Image files may hold anything: bytes that are not UTF-8, control characters (a
terminal escape in a package name would reach the CI log), megabytes on one line.
Catalogers decode with `decode` (never raises) and pass every value they report
through `printable`.
"""

from __future__ import annotations

import unicodedata

# control characters, line and paragraph separators, format characters (bidi overrides):
# the characters `reprolock.model.grammar` calls controls
_CONTROL_CATEGORIES = frozenset({"Cc", "Zl", "Zp", "Cf"})


def decode(data: bytes) -> str:
    """UTF-8 text; undecodable bytes become U+FFFD."""
    return data.decode("utf-8", errors="replace")


def printable(text: str) -> str:
    """``text`` with every control character (newlines and bidi overrides too) replaced
    by U+FFFD."""
    if text.isascii() and text.isprintable():
        return text
    return "".join("\ufffd" if unicodedata.category(c) in _CONTROL_CATEGORIES else c for c in text)
