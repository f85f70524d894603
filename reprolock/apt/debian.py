"""Debian versions and package relations, from python-debian (typed wrappers)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from debian.deb822 import PkgRelation
from debian.debian_support import Version as _Version

_OPS = {"<<", "<=", "=", ">=", ">>"}


@functools.lru_cache(maxsize=65536)
def _parse(text: str) -> _Version:
    return _Version(text)


def compare(a: str, b: str) -> int:
    """dpkg's ordering of two version strings: negative, zero or positive."""
    va, vb = _parse(a), _parse(b)
    return -1 if va < vb else 1 if va > vb else 0


def valid_version(text: str) -> bool:
    try:
        _parse(text)
    except ValueError:
        return False
    return True


def satisfies(version: str, op: str | None, wanted: str | None) -> bool:
    """``version`` against a relation's ``(op, wanted)``; no op means any version."""
    if op is None or wanted is None:
        return True
    c = compare(version, wanted)
    return {
        "<<": c < 0,
        "<=": c <= 0,
        "=": c == 0,
        ">=": c >= 0,
        ">>": c > 0,
    }[op]


@dataclass(frozen=True, slots=True)
class Relation:
    """One alternative of a dependency: ``libc6 (>= 2.36)``, ``python3:any``."""

    name: str
    op: str | None = None
    version: str | None = None
    archqual: str | None = None

    def __str__(self) -> str:
        arch = f":{self.archqual}" if self.archqual else ""
        ver = f" ({self.op} {self.version})" if self.op else ""
        return f"{self.name}{arch}{ver}"


Group = tuple[Relation, ...]  # alternatives: a | b | c


def parse_relations(text: str, arch: str) -> tuple[Group, ...]:
    """A Depends-style field for ``arch``: alternatives restricted to other architectures
    (``[!amd64]``) and build profiles are dropped, as apt drops them."""
    if not text.strip():
        return ()
    out: list[Group] = []
    for group in PkgRelation.parse_relations(text):
        alts = []
        for rel in group:
            arches = rel.get("arch")
            if arches and not _arch_ok(arches, arch):
                continue
            version = rel.get("version")
            op, wanted = (version[0], version[1]) if version else (None, None)
            if op not in _OPS and op is not None:
                op = {"<": "<=", ">": ">="}.get(op, op)
            alts.append(Relation(rel["name"], op, wanted, rel.get("archqual")))
        if alts:
            out.append(tuple(alts))
    return tuple(out)


def _arch_ok(restrictions: Sequence[object], arch: str) -> bool:
    enabled = [r for r in restrictions if getattr(r, "enabled", True)]
    disabled = [r for r in restrictions if not getattr(r, "enabled", True)]
    if enabled:
        return any(getattr(r, "arch", None) in (arch, "any", f"linux-{arch}") for r in enabled)
    return all(getattr(r, "arch", None) != arch for r in disabled)


def parse_provides(text: str, arch: str) -> tuple[tuple[str, str | None], ...]:
    """``Provides: foo (= 1.0), bar`` → ((foo, 1.0), (bar, None))."""
    out = []
    for group in parse_relations(text, arch):
        for rel in group:
            out.append((rel.name, rel.version if rel.op == "=" else None))
    return tuple(out)
