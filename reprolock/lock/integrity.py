"""Integrity digests: one sha256 per section of the lock, over its own canonical body.

``reprolock lock`` writes an ``[integrity]`` table::

    [integrity]
    lock = "sha256:…"        # lock-version, created-by, inputs-hash, matrices-version, [inputs]
    image = "sha256:…"       # [image]

    [integrity.targets."py3.11-amd64"]
    fields = "sha256:…"      # id, platform, python, apt-snapshot, [targets.interpreter],
                             # [[targets.downgrades]]
    base = "sha256:…"        # [targets.base]
    cuda = "sha256:…"        # [targets.cuda]
    apt = "sha256:…"         # [[targets.apt]]
    packages = "sha256:…"    # [[targets.packages]]

Each digest is the sha256 of the canonical JSON (sorted keys, no spaces, UTF-8) of
``[name, value]``, where ``name`` is the section's path (``targets[py3.11-amd64].apt``)
and ``value`` the section as `to_dict` writes it (``null`` when absent), so a section
cannot be moved to another target or another place unnoticed.  A lock read back is
checked section by section: a hand edit, a botched merge or a removed target is named.

These digests are not signatures: anyone can recompute them.  They tell an accident or
a careless edit from a lock reprolock wrote; only resolving again (``reprolock lock``)
proves what a lock should contain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reprolock.model.grammar import show

TARGET_SECTIONS = ("base", "cuda", "apt", "packages")
_LOCK_ONLY = ("image", "targets", "integrity")


@dataclass(frozen=True, slots=True, kw_only=True)
class Integrity:
    """What checking a lock's integrity digests found."""

    verified: bool
    edited: tuple[str, ...] = ()  # the sections whose content no longer matches
    edited_targets: frozenset[str] = frozenset()  # ids of the targets with an edited section
    unverifiable: str | None = None  # why there is nothing to check (an old lock, stripped)


def _digest(name: str, value: object) -> str:
    text = json.dumps(
        [name, value],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=lambda v: f"<{type(v).__name__}>{v}",
    )
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _target_sections(target: Mapping[str, Any], tid: str) -> dict[str, str]:
    where = f"targets[{tid}]"
    fields = {k: v for k, v in target.items() if k not in TARGET_SECTIONS}
    out = {"fields": _digest(where, fields)}
    for section in TARGET_SECTIONS:
        out[section] = _digest(f"{where}.{section}", target.get(section))
    return out


def digests(data: Mapping[str, Any]) -> dict[str, Any]:
    """The ``[integrity]`` table of the lock mapping ``data`` (`to_dict`'s output)."""
    header = {k: v for k, v in data.items() if k not in _LOCK_ONLY}
    targets = {
        str(t["id"]): _target_sections(t, str(t["id"]))
        for t in sorted(data.get("targets", []), key=lambda t: str(t["id"]))
    }
    out: dict[str, Any] = {
        "lock": _digest("lock", header),
        "image": _digest("image", data.get("image")),
    }
    if targets:
        out["targets"] = targets
    return out


def _describe(section: str, tid: str | None = None) -> str:
    if tid is None:
        return {
            "lock": "the top-level fields (lock-version, created-by, inputs-hash, "
            "matrices-version, [inputs])",
            "image": "[image]",
        }[section]
    if section == "fields":
        return f"targets[{tid}] (id, platform, python, apt-snapshot, interpreter, downgrades)"
    return f"targets[{tid}].{section}"


def check(data: Mapping[str, Any], *, lenient: bool) -> Integrity:
    """Compare the lock mapping ``data`` (as read, already validated) with its recorded
    ``[integrity]`` table.  ``lenient``: the lock is of a newer minor version, whose
    sections this reprolock may not know."""
    recorded = data.get("integrity")
    if recorded is None:  # a lock of a version that carries it: stripped
        return Integrity(verified=False, edited=("[integrity] (removed)",))
    if not isinstance(recorded, dict):
        return Integrity(verified=False, edited=("[integrity] (not a table)",))
    actual = digests(data)
    edited: list[str] = []
    for section in ("lock", "image"):
        if recorded.get(section) != actual[section]:
            edited.append(_describe(section))
    known = {"lock", "image", "targets"}
    extra = sorted(str(k) for k in recorded if k not in known)
    recorded_targets = recorded.get("targets", {})
    if not isinstance(recorded_targets, dict):
        return Integrity(verified=False, edited=(*edited, "[integrity.targets] (not a table)"))
    actual_targets: dict[str, dict[str, str]] = actual.get("targets", {})
    touched: set[str] = set()
    for tid, sections in actual_targets.items():
        mine = recorded_targets.get(tid)
        if mine is None:
            edited.append(f"targets[{tid}] (added: it has no integrity digest)")
            touched.add(tid)
            continue
        if not isinstance(mine, dict):
            edited.append(f"[integrity.targets.{show(tid)}] (not a table)")
            touched.add(tid)
            continue
        unknown = sorted(str(k) for k in mine if k not in sections)
        if unknown and lenient:
            return Integrity(
                verified=False,
                unverifiable="it was written by a newer reprolock, with integrity sections "
                f"this one does not know ({', '.join(unknown)})",
            )
        extra.extend(f"targets.{show(tid)}.{k}" for k in unknown)
        changed = [name for name, digest in sections.items() if mine.get(name) != digest]
        edited.extend(_describe(name, tid) for name in changed)
        if changed or unknown:
            touched.add(tid)
    for tid in sorted(str(t) for t in recorded_targets):
        if tid not in actual_targets:
            edited.append(f"targets[{show(tid)[1:-1]}] (removed)")
    if extra and lenient:
        return Integrity(
            verified=False,
            unverifiable="it was written by a newer reprolock, with integrity sections this "
            f"one does not know ({', '.join(extra)})",
        )
    edited.extend(f"[integrity] {name} (unknown section)" for name in extra)
    return Integrity(verified=not edited, edited=tuple(edited), edited_targets=frozenset(touched))
