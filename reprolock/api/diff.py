"""``reprolock diff A B``: each side a lock file or an image, compared section by section."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from reprolock.api.export import pick_target
from reprolock.api.inspect import InspectOptions, InspectResult, inspect
from reprolock.api.network import NetOptions
from reprolock.api.project import read_lock
from reprolock.document import toml
from reprolock.errors import ReprolockError
from reprolock.image.read import ImageRead
from reprolock.inventory import build_inventory
from reprolock.lock import LockedTarget
from reprolock.lock.io import read_bytes
from reprolock.verify.diff import Change, diff
from reprolock.verify.snapshot import Snapshot, from_inventory, from_target, with_base


@dataclass(frozen=True, slots=True, kw_only=True)
class DiffResult:
    a: str
    b: str
    changes: tuple[Change, ...]
    left_out: str | None = None  # what came unchanged from a lock's base, in one line


@dataclass(frozen=True, slots=True, kw_only=True)
class _Lock:
    target: LockedTarget
    venv: str | None
    snapshot: Snapshot


def _is_lock(text: str) -> bool:
    path = Path(text)
    if not path.is_file() or path.suffix not in (".lock", ".toml"):
        return False
    try:
        data = read_bytes(path, what="lock")
        return "lock-version" in toml.loads(data.decode("utf-8"), file=str(path))
    except (ReprolockError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False


def _side(
    text: str, *, target_id: str | None, options: InspectOptions, net: NetOptions
) -> _Lock | InspectResult:
    if _is_lock(text):
        path = Path(text)
        lock, _warnings = read_lock(path)
        target = pick_target(lock, path, target_id)
        venv = lock.image.venv if lock.image else None
        return _Lock(
            target=target, venv=venv, snapshot=from_target(target, f"{path} ({target.id})", venv)
        )
    return inspect(text, options, net)


def _snapshot(side: _Lock | InspectResult) -> Snapshot:
    if isinstance(side, _Lock):
        return side.snapshot
    diff_ids = tuple(layer.diff_id for layer in side.image.layers)
    return from_inventory(side.inventory, diff_ids, side.image.description)


def diff_sides(
    a: str,
    b: str,
    *,
    target_id: str | None,
    only: frozenset[str],
    options: InspectOptions,
    net: NetOptions,
) -> DiffResult:
    """A lock compared with an image takes in the base it pins, as the image's first
    layers hold it: what comes unchanged from there is left out, and counted."""
    left = _side(a, target_id=target_id, options=options, net=net)
    right = _side(b, target_id=target_id, options=options, net=net)
    before, after = _snapshot(left), _snapshot(right)
    left_out = None
    if isinstance(left, _Lock) and isinstance(right, InspectResult):
        before, left_out = _with_base(left, right, after, options)
    elif isinstance(right, _Lock) and isinstance(left, InspectResult):
        after, left_out = _with_base(right, left, before, options)
    return DiffResult(
        a=before.label,
        b=after.label,
        changes=tuple(diff(before, after, only=only)),
        left_out=left_out,
    )


def _with_base(
    lock: _Lock, image: InspectResult, seen: Snapshot, options: InspectOptions
) -> tuple[Snapshot, str | None]:
    """The lock's snapshot with its base's contents, and the line saying how much of
    them the image holds unchanged; the lock's own when the image is not built on it."""
    base = lock.target.base
    count = 0 if base is None else len(base.diff_ids)
    if base is None or tuple(seen.base or ())[:count] != base.diff_ids or not image.image.scans:
        return lock.snapshot, None
    read = ImageRead(
        description=f"{base.ref} (the image's first {count} layers)",
        config=None,
        config_digest=None,
        manifest_digest=None,
        view=image.image.view_of_first(count),
    )
    inventory = build_inventory(
        read, check_record=options.check_record, check_dpkg=options.check_dpkg
    )
    from_base = from_inventory(inventory, base.diff_ids, read.description)
    merged = with_base(lock.snapshot, from_base, lock.venv)
    apt = sum(
        1 for k, v in from_base.apt.items() if k not in lock.snapshot.apt and seen.apt.get(k) == v
    )
    python = sum(
        1
        for k, v in from_base.python.items()
        if k not in lock.snapshot.python and merged.python.get(k) == v == seen.python.get(k)
    )
    files = sum(1 for k, v in from_base.files.items() if seen.files.get(k) == v)
    parts = [
        f"{n} {what}{'s' if n != 1 else ''}"
        for n, what in ((apt, "apt package"), (python, "Python package"), (files, "changed file"))
        if n
    ]
    if not parts:
        return merged, None
    return merged, f"left out, unchanged from the locked base {base.ref}: " + ", ".join(parts)
