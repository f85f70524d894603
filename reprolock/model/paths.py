"""Paths built from data: names joined onto a root that the result never leaves.

A lock names files (a wheel's file name, a ``.deb``, a target's folder); a spec names
requirements files.  Every path built from such a value goes through `join_under`, which
refuses a name that is absolute, ``.``/``..``, or holds a separator or a control
character, and a result that a symbolic link already on disk would carry outside the root.
"""

from __future__ import annotations

from pathlib import Path

from reprolock.model.grammar import has_control, show


class UnsafePath(ValueError):
    """A name that would make a path leave its root."""


def check_name(name: str) -> str:
    """``name`` if it is one safe path component; `UnsafePath` otherwise."""
    if (
        not name
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or has_control(name)
        or len(name.encode("utf-8", "surrogateescape")) > 255
    ):
        raise UnsafePath(f"{show(name)} is not a single file or folder name")
    return name


def join_under(root: Path, *names: str) -> Path:
    """``root/names[0]/names[1]/…``, each name one component, staying inside ``root``.

    Raises `UnsafePath` for a bad name, or when a symbolic link on the way leads outside
    ``root`` (the result, resolved, must still lie under ``root`` resolved).
    """
    path = root
    for name in names:
        path = path / check_name(name)
    inside(root, path)
    return path


def inside(root: Path, path: Path) -> Path:
    """``path`` if it lies under ``root`` once symbolic links are followed; `UnsafePath`
    otherwise."""
    base = root.resolve()
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop, an unreadable folder
        raise UnsafePath(f"{path}: cannot be resolved ({exc})") from None
    if resolved != base and not resolved.is_relative_to(base):
        raise UnsafePath(f"{path} leads outside {root} (to {resolved})")
    return path
