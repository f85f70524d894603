"""Type and key checks over parsed TOML that collect every problem with its place."""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from reprolock.document.locate import KeyPath, line_of, locate_keys, render_path
from reprolock.errors import Problem
from reprolock.model import grammar


def toml_type(value: object) -> str:
    """The TOML name of a Python value's type, for messages."""
    match value:
        case bool():
            return "boolean"
        case int():
            return "integer"
        case float():
            return "float"
        case str():
            return "string"
        case list():
            return "array"
        case dict():
            return "table"
        case dt.datetime() | dt.date() | dt.time():
            return "date/time"
    return type(value).__name__  # pragma: no cover


def show(value: object) -> str:
    """A short rendering of a value as it would be written in TOML (control characters
    escaped, long values cut)."""
    if isinstance(value, str):
        return grammar.show(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class Checker:
    """Collects problems found in one TOML document."""

    def __init__(
        self,
        *,
        file: str,
        lines: Mapping[KeyPath, int] | None = None,
        text: str | None = None,
        prefix: KeyPath = (),
    ) -> None:
        """Line numbers come from ``lines``, or are located in ``text`` on the first problem
        (locating is a full scan, wasted on the usual valid document)."""
        self.file = file
        self._lines = dict(lines) if lines is not None else None
        self._text = text
        self.prefix = prefix
        self.problems: list[Problem] = []

    def lines(self) -> dict[KeyPath, int]:
        if self._lines is None:
            self._lines = locate_keys(self._text) if self._text is not None else {}
        return self._lines

    def add(self, path: KeyPath, message: str, hint: str | None = None) -> None:
        full = (*self.prefix, *path)
        self.problems.append(
            Problem(
                message=message,
                file=self.file,
                key=render_path(full) if full else None,
                line=line_of(self.lines(), full),
                hint=hint,
            )
        )

    def table(
        self, value: object, path: KeyPath, allowed: Collection[str]
    ) -> dict[str, Any] | None:
        """``value`` as a table whose keys are all in ``allowed``; None if it is not a table."""
        if not isinstance(value, dict):
            self.wrong_type(path, value, "a table")
            return None
        for key in value:
            if key not in allowed:
                self.unknown_key((*path, key), key, allowed)
        return value

    def unknown_key(self, path: KeyPath, key: str, allowed: Collection[str]) -> None:
        choices = sorted(allowed)
        normal = {c.replace("-", "_").lower(): c for c in choices}
        match = normal.get(key.replace("-", "_").lower())
        if match is None:
            close = difflib.get_close_matches(key, choices, n=1, cutoff=0.6)
            match = close[0] if close else None
        if match is not None:
            hint = f'Did you mean "{match}"?'
        else:
            hint = f"Known keys here: {', '.join(choices)}."
        self.add(path, f'unknown key "{key}".', hint)

    def wrong_type(
        self, path: KeyPath, value: object, expected: str, hint: str | None = None
    ) -> None:
        self.add(path, f"expected {expected}, got {toml_type(value)} {show(value)}.", hint)

    # -- typed getters: return None (and record a problem) when the value is wrong ----
    def string(
        self, table: Mapping[str, Any], path: KeyPath, key: str, hint: str | None = None
    ) -> str | None:
        if key not in table:
            return None
        value = table[key]
        if not isinstance(value, str):
            self.wrong_type((*path, key), value, "a string", hint)
            return None
        if not value.strip():
            self.add((*path, key), "must not be empty.", hint)
            return None
        return value

    def boolean(self, table: Mapping[str, Any], path: KeyPath, key: str) -> bool | None:
        if key not in table:
            return None
        value = table[key]
        if not isinstance(value, bool):
            self.wrong_type((*path, key), value, "true or false")
            return None
        return value

    def strings(
        self, table: Mapping[str, Any], path: KeyPath, key: str, hint: str | None = None
    ) -> list[tuple[int, str]] | None:
        """An array of strings as (index, value) pairs; bad elements are reported and dropped."""
        if key not in table:
            return None
        value = table[key]
        if not isinstance(value, list):
            self.wrong_type((*path, key), value, "an array of strings", hint)
            return None
        out: list[tuple[int, str]] = []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                self.wrong_type((*path, key, i), item, "a string", hint)
            else:
                out.append((i, item))
        return out

    def string_table(
        self, table: Mapping[str, Any], path: KeyPath, key: str
    ) -> dict[str, str] | None:
        """A table of string values (env, labels, mirrors)."""
        if key not in table:
            return None
        value = table[key]
        if not isinstance(value, dict):
            self.wrong_type((*path, key), value, "a table of strings")
            return None
        out: dict[str, str] = {}
        for name, item in value.items():
            if isinstance(item, str):
                out[name] = item
            else:
                self.wrong_type(
                    (*path, key, name), item, "a string", f'Quote the value: {name} = "{item}".'
                )
        return out

    def duplicates(self, path: KeyPath, items: Sequence[tuple[int, str]], what: str) -> None:
        seen: dict[str, int] = {}
        for i, item in items:
            if item in seen:
                self.add(
                    (*path, i),
                    f'duplicate {what} "{item}" (also at index {seen[item]}).',
                    "List each one once.",
                )
            else:
                seen[item] = i
