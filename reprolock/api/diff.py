"""``reprolock diff A B``: each side a lock file or an image, compared section by section."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from reprolock.api.export import pick_target
from reprolock.api.inspect import TRANSPORTS, InspectOptions, InspectResult, inspect
from reprolock.api.network import NetOptions
from reprolock.api.progress import Observer
from reprolock.api.project import LOCK_NAME, default_lock_path, find_spec, read_lock_text
from reprolock.errors import InputError, ReprolockError
from reprolock.image.read import ImageRead
from reprolock.inventory import build_inventory
from reprolock.lock import LockedTarget
from reprolock.lock.io import decode, read_at_revision, read_bytes, read_pipe, read_stream
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


# The first bytes of what is never a lock: an archive (an image), compressed or not.
_BINARY_MAGIC = (b"\x1f\x8b", b"\x28\xb5\x2f\xfd", b"\xfd7zXZ", b"BZh")
SNIFF_BYTES = 512


def lock_text(text: str, *, cwd: Path, stdin: IO[bytes]) -> tuple[str, str] | None:
    """The lock a side of a diff names, as (where, its text); None when it names an image.

    ``-`` is the lock on standard input (``stdin``); ``git:REV[:PATH]`` the lock
    at a commit (PATH relative to ``cwd``; the lock beside the spec by default). A path is
    read for what it holds, whatever its name: text is a lock, an archive an image; a pipe
    (``<(git show HEAD~1:reprolock.lock)``) holds a lock. Any ``TRANSPORT:`` an image."""
    what = "lock"
    if text == "-":
        data = read_stream(stdin, name="standard input", what=what)
        return "standard input", decode(Path("standard input"), data)
    if text.startswith("git:"):
        revision, _, file = text.removeprefix("git:").partition(":")
        file = file or _default_lock(cwd)
        data = read_at_revision(revision, file, cwd=cwd, what=what)
        name = f"git:{revision}:{file}"
        return name, decode(Path(name), data)
    transport, sep, _ = text.partition(":")
    if sep and transport in TRANSPORTS:
        return None
    path = cwd / text
    try:
        info = path.stat()
    except OSError:
        return None  # not a file here: an image name
    if stat.S_ISFIFO(info.st_mode) or stat.S_ISCHR(info.st_mode):
        return text, decode(Path(text), read_pipe(path, what=what))
    if not stat.S_ISREG(info.st_mode) or not _is_text(path):
        return None
    return text, decode(Path(text), read_bytes(path, what=what))


def _is_text(path: Path) -> bool:
    """Whether ``path`` starts like text (a lock) rather than an archive (an image)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except OSError:
        return False
    return b"\0" not in head and not head.startswith(_BINARY_MAGIC)


def _default_lock(cwd: Path) -> str:
    """The lock beside the spec of ``cwd``, relative to it (``reprolock.lock`` without one)."""
    try:
        return os.path.relpath(default_lock_path(find_spec(None, cwd)), cwd)
    except ReprolockError:
        return LOCK_NAME


def _side(
    text: str,
    *,
    target_id: str | None,
    options: InspectOptions,
    net: NetOptions,
    cwd: Path,
    stdin: IO[bytes],
    observer: Observer | None,
) -> _Lock | InspectResult:
    found = lock_text(text, cwd=cwd, stdin=stdin)
    if found is not None:
        name, body = found
        lock, _warnings = read_lock_text(body, name)
        target = pick_target(lock, Path(name), target_id)
        venv = lock.image.venv if lock.image else None
        return _Lock(
            target=target, venv=venv, snapshot=from_target(target, f"{name} ({target.id})", venv)
        )
    return inspect(text, options, net, observer=observer)


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
    cwd: Path | None = None,
    stdin: IO[bytes] | None = None,
    observe: Callable[[str], Observer] | None = None,
) -> DiffResult:
    """Each side is a lock or an image (`lock_text` tells them apart by content; at most
    one side may be ``-``). ``observe`` gives the observer of an image side's read.

    A lock compared with an image takes in the base it pins, as the image's first
    layers hold it: what comes unchanged from there is left out, and counted."""
    if a == b == "-":
        raise InputError(
            "both sides are standard input (-).",
            hint="Read one lock from standard input and name the other side.",
        )
    here = cwd or Path()
    sides = [
        _side(
            text,
            target_id=target_id,
            options=options,
            net=net,
            cwd=here,
            stdin=stdin or sys.stdin.buffer,
            observer=observe(text) if observe else None,
        )
        for text in (a, b)
    ]
    left, right = sides
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
