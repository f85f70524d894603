"""``reprolock diff A B``: each side a lock file or an image, compared section by section."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from reprolock.api.export import pick_target
from reprolock.api.inspect import InspectOptions, inspect
from reprolock.api.network import NetOptions
from reprolock.api.project import read_lock
from reprolock.document import toml
from reprolock.errors import ReprolockError
from reprolock.lock.io import read_bytes
from reprolock.verify.diff import Change, diff
from reprolock.verify.snapshot import Snapshot, from_inventory, from_target


@dataclass(frozen=True, slots=True, kw_only=True)
class DiffResult:
    a: str
    b: str
    changes: tuple[Change, ...]


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
    text: str, *, target_id: str | None, venv: str | None, options: InspectOptions, net: NetOptions
) -> tuple[Snapshot, str | None]:
    """A snapshot of one side, and the venv its lock names (for the other side)."""
    if _is_lock(text):
        path = Path(text)
        lock, _warnings = read_lock(path)
        target = pick_target(lock, path, target_id)
        return from_target(target, f"{path} ({target.id})"), (
            lock.image.venv if lock.image else None
        )
    result = inspect(text, options, net)
    diff_ids = tuple(layer.diff_id for layer in result.image.layers)
    return from_inventory(result.inventory, diff_ids, result.image.description, venv), None


def diff_sides(
    a: str,
    b: str,
    *,
    target_id: str | None,
    only: frozenset[str],
    options: InspectOptions,
    net: NetOptions,
) -> DiffResult:
    """Locks are read first, so an image compared with a lock is read for the lock's venv."""
    venv = None
    if _is_lock(a):
        left, venv = _side(a, target_id=target_id, venv=None, options=options, net=net)
        right, _ = _side(b, target_id=target_id, venv=venv, options=options, net=net)
    else:
        right, venv = _side(b, target_id=target_id, venv=None, options=options, net=net)
        left, _ = _side(a, target_id=target_id, venv=venv, options=options, net=net)
    return DiffResult(a=left.label, b=right.label, changes=tuple(diff(left, right, only=only)))
