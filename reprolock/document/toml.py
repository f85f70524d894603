"""TOML text → a mapping, bounded: no recursion past `limits.nesting` levels."""

from __future__ import annotations

import tomllib
from typing import Any

from reprolock import limits
from reprolock.errors import InputError


def nesting_error(file: str) -> InputError:
    cap = limits.current().nesting
    return InputError(
        f"{file}: arrays and tables are nested more than {cap} levels deep; refusing it.",
        hint="No reprolock file nests that deep: this is not a spec or lock written for "
        f"reprolock. If it is genuine, raise the limit: {limits.ENV_PREFIX}NESTING=<levels> "
        "(see docs/security.md).",
    )


def depth(value: object) -> int:
    """How deeply ``value``'s arrays and tables nest (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: list[object] = list(item.values())
        elif isinstance(item, list):
            children = list(item)
        else:
            continue
        level += 1
        deepest = max(deepest, level)
        stack.extend((child, level) for child in children)
    return deepest


def loads(text: str, *, file: str) -> dict[str, Any]:
    """``tomllib.loads(text)``; `InputError` when it nests deeper than the limit.

    Syntax errors are raised as `tomllib.TOMLDecodeError`, for the caller to locate.
    """
    try:
        data = tomllib.loads(text)
    except RecursionError:
        raise nesting_error(file) from None
    if depth(data) > limits.current().nesting:
        raise nesting_error(file)
    return data
