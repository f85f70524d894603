"""One error root for reprolock; the category fixes the exit code.

Errors carry what went wrong, where (a file, a key path, a line) and how to
fix it.  Only the command line prints them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """One thing wrong with an input, located as precisely as we can."""

    message: str
    file: str | None = None
    key: str | None = None
    line: int | None = None
    column: int | None = None
    hint: str | None = None

    def location(self) -> str:
        """``file:line:column`` (the parts that are known), then the key path."""
        parts: list[str] = []
        if self.file:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            parts.append(where)
        if self.key:
            parts.append(self.key)
        return ": ".join(parts)

    def render(self) -> str:
        """The problem as one sentence or two: where, what, and the fix."""
        where = self.location()
        text = f"{where}: {self.message}" if where else self.message
        if self.hint:
            text += f" {self.hint}"
        return text


class ReprolockError(Exception):
    """Root of every error reprolock reports to its user."""

    exit_code = 1
    category = "error"

    def __init__(
        self, message: str, *, hint: str | None = None, problems: Sequence[Problem] = ()
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.problems = tuple(problems)

    def render(self) -> str:
        """One paragraph: the message, each located problem, then the fix."""
        lines = [self.message]
        lines.extend(f"  {p.render()}" for p in self.problems)
        if self.hint:
            lines.append(self.hint)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        """A JSON-able form for ``--format json``."""
        return {
            "category": self.category,
            "exit-code": self.exit_code,
            "message": self.message,
            "hint": self.hint,
            "problems": [
                {
                    k: v
                    for k, v in {
                        "message": p.message,
                        "file": p.file,
                        "key": p.key,
                        "line": p.line,
                        "column": p.column,
                        "hint": p.hint,
                    }.items()
                    if v is not None
                }
                for p in self.problems
            ],
        }


class CheckFailed(ReprolockError):
    """A check found a difference: drift in an image, a stale lock."""

    exit_code = 1
    category = "check-failed"


class InputError(ReprolockError):
    """Bad spec, lock or command-line usage."""

    exit_code = 2
    category = "input"


class Unsatisfiable(ReprolockError):
    """No resolution exists; carries the causes as problems."""

    exit_code = 3
    category = "unsatisfiable"


class SourceError(ReprolockError):
    """Network, registry, image or filesystem trouble."""

    exit_code = 4
    category = "source"


def problems_error(file: str, problems: Sequence[Problem], *, what: str) -> InputError:
    """One `InputError` that lists every problem found in ``file``."""
    problems = sorted(problems, key=lambda p: (p.line or 0, p.column or 0))
    count = len(problems)
    noun = "problem" if count == 1 else "problems"
    return InputError(f"{file}: {what} has {count} {noun}:", problems=problems)
