"""Every value written into a Dockerfile goes through here: checked against its grammar,
or quoted.

A Dockerfile is parsed line by line, and ``ENV``/``LABEL`` values undergo variable
expansion (``$VAR``, ``${VAR}``) and quote removal.  So a value from the lock either
matches a grammar that leaves nothing to escape (paths, names, ports, versions: see
`reprolock.model.grammar`), or is written as a double-quoted string with ``\\``, ``"``
and ``$`` escaped (Docker's lexer honours exactly those three escapes inside double
quotes).  Control characters are refused everywhere: a newline would start a new
instruction.  Exec forms (``CMD``, ``ENTRYPOINT``, ``HEALTHCHECK CMD``) are JSON arrays.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from reprolock.errors import InputError
from reprolock.model import grammar

_HINT = (
    "The Dockerfile is written from the lock; this value cannot be written into one safely. "
    "Fix it in reprolock.toml and run `reprolock lock` again (a lock is never edited by hand)."
)


def word(value: str, check: Callable[[str], str], what: str) -> str:
    """``value``, which ``check`` (a `reprolock.model.grammar` validator) must accept;
    `InputError` naming ``what`` otherwise."""
    try:
        return check(value)
    except ValueError as exc:
        raise InputError(f"{what}: {exc}.", hint=_HINT) from None


def quoted(value: str, what: str) -> str:
    """``value`` as a double-quoted ``ENV``/``LABEL`` value: ``\\``, ``"`` and ``$``
    escaped, control characters refused."""
    word(value, grammar.env_value, what)
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


def exec_form(args: Sequence[str], what: str) -> str:
    """An exec-form command: a JSON array of strings (no NUL)."""
    for arg in args:
        word(arg, grammar.argument, what)
    return json.dumps(list(args))


def comment(text: str, what: str) -> str:
    """``text`` for a ``#`` comment line: one line, no control characters."""
    return word(text, grammar.label_text, what)
