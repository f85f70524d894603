"""docs/security.md lists every limit reprolock enforces, as `reprolock/limits.py` defines it."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

from reprolock import limits

ROOT = Path(__file__).resolve().parent.parent


def _documented_fields() -> list[tuple[str, str]]:
    """(field, docstring) of every `Limits` field, in source order."""
    tree = ast.parse((ROOT / "reprolock" / "limits.py").read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Limits")
    out = []
    body = cls.body
    for node, after in zip(body, [*body[1:], None], strict=True):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            doc = ""
            if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant):
                doc = " ".join(str(after.value.value).split())
            out.append((node.target.id, doc))
    return out


def _value(name: str) -> str:
    value = getattr(limits.DEFAULT, name)
    if name.endswith("bytes") or name.endswith("floor"):
        return limits._human(value)
    if isinstance(value, float):
        return f"{value:g} s" if name.endswith("seconds") else f"{value:g}"
    return str(value)


def table_rows() -> list[str]:
    """The rows of the limits table in docs/security.md (regenerate it from these)."""
    return [
        f"| `{limits.ENV_PREFIX}{name.upper()}` | {_value(name)} | {doc} |"
        for name, doc in _documented_fields()
    ]


def test_every_limit_is_documented_with_its_default() -> None:
    fields = [f.name for f in dataclasses.fields(limits.Limits)]
    assert [name for name, _ in _documented_fields()] == fields
    assert all(doc for _, doc in _documented_fields()), "every limit needs its docstring"
    text = (ROOT / "docs" / "security.md").read_text()
    missing = [row for row in table_rows() if row not in text]
    assert not missing, "docs/security.md lacks (or has stale) rows:\n" + "\n".join(missing)


if __name__ == "__main__":  # print the table, to paste into docs/security.md
    print("\n".join(table_rows()))
