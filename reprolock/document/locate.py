"""Map TOML key paths to the line they are written on.

``tomllib`` gives values but no positions, so error messages would lack line
numbers.  This small scanner walks already-valid TOML text once and records
the line of every table header, key, array element and inline-table key.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from reprolock.model import grammar

KeyPath = tuple[str | int, ...]

_BARE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def render_path(path: Sequence[str | int]) -> str:
    """``("python", "index", 1, "name")`` → ``python.index[1].name``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        text = part if part and all(c in _BARE for c in part) else grammar.show(part)
        out += f".{text}" if out else text
    return out


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.lines: dict[KeyPath, int] = {}

    # -- low level ---------------------------------------------------------
    def peek(self, n: int = 1) -> str:
        return self.text[self.pos : self.pos + n]

    def advance(self, n: int = 1) -> None:
        self.line += self.text.count("\n", self.pos, self.pos + n)
        self.pos += n

    def skip_blank(self, newlines: bool) -> None:
        while self.pos < len(self.text):
            c = self.text[self.pos]
            if c in " \t\r" or (newlines and c == "\n"):
                self.advance()
            elif c == "#":
                end = self.text.find("\n", self.pos)
                self.advance((len(self.text) if end < 0 else end) - self.pos)
            else:
                return

    def record(self, path: KeyPath) -> None:
        self.lines.setdefault(path, self.line)

    # -- keys and strings --------------------------------------------------
    def string(self) -> str:
        for quote in ('"""', "'''"):
            if self.peek(3) == quote:
                self.advance(3)
                end = self.text.find(quote, self.pos)
                end = len(self.text) if end < 0 else end
                while self.text[end + 3 : end + 4] == quote[0]:
                    end += 1
                value = self.text[self.pos : end]
                self.advance(end + 3 - self.pos)
                return value
        quote = self.peek()
        self.advance()
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in (quote, "\n"):
            self.advance(2 if quote == '"' and self.text[self.pos] == "\\" else 1)
        value = self.text[start : self.pos]
        self.advance()
        return value.replace('\\"', '"') if quote == '"' else value

    def key(self) -> list[str]:
        parts: list[str] = []
        while True:
            self.skip_blank(newlines=False)
            if self.peek() in ('"', "'"):
                parts.append(self.string())
            else:
                start = self.pos
                while self.pos < len(self.text) and self.text[self.pos] in _BARE:
                    self.advance()
                if self.pos == start:
                    raise ValueError("expected a key")
                parts.append(self.text[start : self.pos])
            self.skip_blank(newlines=False)
            if self.peek() != ".":
                return parts
            self.advance()

    # -- values -------------------------------------------------------------
    def value(self, path: KeyPath) -> None:
        self.skip_blank(newlines=False)
        c = self.peek()
        if c in ('"', "'"):
            self.string()
        elif c == "[":
            self.advance()
            index = 0
            while True:
                self.skip_blank(newlines=True)
                if self.peek() == "]":
                    self.advance()
                    return
                self.record((*path, index))
                self.value((*path, index))
                self.skip_blank(newlines=True)
                if self.peek() == ",":
                    self.advance()
                    index += 1
        elif c == "{":
            self.advance()
            while True:
                self.skip_blank(newlines=False)
                if self.peek() == "}":
                    self.advance()
                    return
                sub = (*path, *self.key())
                self.record(sub)
                self.advance()  # '='
                self.value(sub)
                self.skip_blank(newlines=False)
                if self.peek() == ",":
                    self.advance()
        else:
            while self.pos < len(self.text) and self.text[self.pos] not in ",]}\n#":
                self.advance()

    # -- document -------------------------------------------------------------
    def document(self) -> None:
        prefix: KeyPath = ()
        arrays: dict[KeyPath, int] = {}
        while True:
            self.skip_blank(newlines=True)
            if self.pos >= len(self.text):
                return
            if self.peek() == "[":
                is_array = self.peek(2) == "[["
                self.advance(2 if is_array else 1)
                parts = self.key()
                self.advance(2 if is_array else 1)
                current: KeyPath = ()
                for i, part in enumerate(parts):
                    current = (*current, part)
                    last = i == len(parts) - 1
                    if last and is_array:
                        self.record(current)
                        arrays[current] = arrays.get(current, 0) + 1
                        current = (*current, arrays[current] - 1)
                    elif current in arrays:
                        current = (*current, arrays[current] - 1)
                self.record(current)
                prefix = current
            else:
                path = (*prefix, *self.key())
                self.record(path)
                self.advance()  # '='
                self.value(path)


def locate_keys(text: str) -> dict[KeyPath, int]:
    """Line numbers (1-based) of the keys in ``text``, which must be valid TOML."""
    scanner = _Scanner(text)
    with contextlib.suppress(ValueError, IndexError):
        scanner.document()  # best effort: positions found before a surprise still help
    return scanner.lines


def line_of(lines: dict[KeyPath, int], path: Sequence[str | int]) -> int | None:
    """The line of ``path``, or of its nearest written ancestor."""
    probe = tuple(path)
    while probe:
        if probe in lines:
            return lines[probe]
        probe = probe[:-1]
    return None
