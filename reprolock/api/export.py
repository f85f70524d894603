"""``reprolock export``: artifacts for one locked target."""

from __future__ import annotations

from pathlib import Path

from reprolock import __version__
from reprolock.api.project import default_lock_path, find_spec, read_lock
from reprolock.emit.pylock import pylock_toml
from reprolock.emit.requirements import requirements_txt
from reprolock.errors import InputError
from reprolock.lock import LockedTarget, Lockfile
from reprolock.lock.io import write_atomic


def locate_lock(spec_path: Path | None, lock_path: Path | None, cwd: Path) -> Path:
    if lock_path is not None:
        return lock_path
    return default_lock_path(find_spec(spec_path, cwd))


def pick_target(lock: Lockfile, lock_path: Path, target_id: str | None) -> LockedTarget:
    """The target named ``target_id``, or the only one."""
    ids = [t.id for t in lock.targets]
    if target_id is None:
        if len(ids) == 1:
            return lock.targets[0]
        raise InputError(
            f"{lock_path}: has {len(ids)} targets; say which with --target.",
            hint=f"Targets: {', '.join(ids) or 'none'}.",
        )
    target = lock.target(target_id)
    if target is None:
        raise InputError(
            f'{lock_path}: has no target "{target_id}".',
            hint=f"Targets: {', '.join(ids) or 'none'}.",
        )
    return target


def export(
    kind: str,
    *,
    spec_path: Path | None,
    lock_path: Path | None,
    cwd: Path,
    target_id: str | None,
    output: Path | None,
    urls: bool = False,
) -> tuple[str, list[str]]:
    """Render ``kind`` (``requirements`` or ``pylock``); write it to ``output`` if given."""
    path = locate_lock(spec_path, lock_path, cwd)
    if not path.exists():
        raise InputError(f"{path}: no such lock.", hint="Create it with `reprolock lock`.")
    lock, warnings = read_lock(path)
    target = pick_target(lock, path, target_id)
    if kind == "requirements":
        header = (
            f"# Exported by reprolock {__version__} from {path.name}, target {target.id}.\n"
            "# Install with: pip install --no-deps --require-hashes -r <this file>"
        )
        text = requirements_txt(target, urls=urls, header=header)
    else:
        text = pylock_toml(target)
    if output is not None:
        write_atomic(output, text.encode("utf-8"))
    return text, warnings
