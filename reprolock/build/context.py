"""The ``[image] copy`` files, read from the build context as ``COPY --chown`` copies them.

A source (a path relative to the context, ``*``/``?`` allowed) that is a folder has its
contents copied into the destination; a file goes to the destination, or into it when
the destination ends with ``/`` or the source matched several paths (then the destination
must end with ``/``, as Docker requires).  Everything copied, and the folders the copy
creates, belongs to the image's user.  Symbolic links inside a copied folder are copied as
links; a source that is a link is followed only to a path inside the context.  Nothing
outside the context is read: every file is opened without following a link at its end,
every folder on the way is checked to lie inside the context.

Modes are normalized, so that the umask and the checkout do not change the image: files
are 0644, or 0755 when any execute bit is set (all git keeps), folders 0755; times are
the build's epoch.  A FIFO, a socket or a device in the context is an error.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from reprolock import limits
from reprolock.build.tree import Tree
from reprolock.errors import InputError, SourceError
from reprolock.image.files import open_regular

_HINT = "Fix [image] copy in reprolock.toml, then run `reprolock lock`."


@dataclass(frozen=True, slots=True)
class Copied:
    source: str
    destination: str
    files: int
    bytes: int


def _inside(root: Path, path: Path) -> bool:
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError):
        return False
    base = root.resolve()
    return resolved == base or resolved.is_relative_to(base)


def _matches(root: Path, pattern: str) -> list[str]:
    """Relative paths under ``root`` matching ``pattern`` (``*`` does not cross ``/``),
    walking only folders inside the context."""
    found = [""]
    for part in [p for p in pattern.strip("/").split("/") if p and p != "."]:
        nxt: list[str] = []
        for base in found:
            folder = root / base if base else root
            if not folder.is_dir() or not _inside(root, folder):
                continue
            if not any(c in part for c in "*?["):
                if (folder / part).exists() or (folder / part).is_symlink():
                    nxt.append(posixpath.join(base, part) if base else part)
                continue
            try:
                names = sorted(p.name for p in folder.iterdir())
            except OSError as exc:
                raise SourceError(f"cannot list {folder}: {exc.strerror or exc}.") from None
            nxt.extend(
                posixpath.join(base, n) if base else n
                for n in names
                if fnmatch.fnmatchcase(n, part)
            )
        found = nxt
    return [f for f in found if f]


def _mode(st_mode: int) -> int:
    return 0o755 if st_mode & 0o111 else 0o644


class _Budget:
    def __init__(self) -> None:
        caps = limits.current()
        self.bytes = caps.layer_bytes
        self.entries = caps.image_entries

    def take(self, size: int, what: str) -> None:
        self.bytes -= size
        self.entries -= 1
        if self.bytes < 0:
            raise limits.exceeded(f"{what}: the files to copy", "layer_bytes")
        if self.entries < 0:
            raise limits.exceeded(f"{what}: the files to copy", "image_entries")


def _walk(root: Path, relative: str) -> Iterator[tuple[str, os.stat_result]]:
    """Every path under the folder ``relative`` (itself excluded), sorted, links not
    followed."""
    stack = [relative]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(root / current) as scan:
                names = sorted(scan, key=lambda e: e.name)
                infos = [(e.name, e.stat(follow_symlinks=False)) for e in names]
        except OSError as exc:
            raise SourceError(f"cannot read {root / current}: {exc.strerror or exc}.") from None
        folders = []
        for name, info in infos:
            path = posixpath.join(current, name)
            yield path, info
            if stat.S_ISDIR(info.st_mode):
                folders.append(path)
        stack.extend(reversed(folders))


def copy_into(
    tree: Tree,
    context: Path,
    copies: Sequence[tuple[str, str]],
    *,
    uid: int,
    gid: int,
) -> list[Copied]:
    """Every ``(source, destination)`` of ``[image] copy`` into ``tree``."""
    context = context.resolve()
    budget = _Budget()
    out = []
    for source, destination in copies:
        matches = _matches(context, source)
        if not matches:
            raise InputError(
                f"[image] copy: {source} matches nothing in the build context {context}.",
                hint=_HINT,
            )
        many = len(matches) > 1 or any(c in source for c in "*?[")
        if many and not destination.endswith("/"):
            raise InputError(
                f"[image] copy: {source} names several paths, so the destination "
                f"{destination} must end with /.",
                hint=_HINT,
            )
        files = size = 0
        for match in matches:
            path = context / match
            if path.is_symlink() and not _inside(context, path):
                raise InputError(
                    f"[image] copy: {match} is a link that leads outside the build context.",
                    hint=_HINT,
                )
            real = path.resolve() if path.is_symlink() else path
            info = real.stat()
            if stat.S_ISDIR(info.st_mode):
                if not _inside(context, real):
                    raise InputError(f"[image] copy: {match} lies outside the build context.")
                base = destination.rstrip("/") or "/"
                tree.dir(base, mode=0o755, uid=uid, gid=gid)
                relative = str(real.relative_to(context))
                for sub, sub_info in _walk(context, relative):
                    target = posixpath.join(base, posixpath.relpath(sub, relative))
                    files, size = _one(
                        tree,
                        context,
                        sub,
                        sub_info,
                        target,
                        uid,
                        gid,
                        budget,
                        files,
                        size,
                    )
            else:
                target = (
                    posixpath.join(destination, posixpath.basename(match))
                    if destination.endswith("/")
                    else destination
                )
                parent = posixpath.dirname(target)
                if parent and parent != "/":
                    tree.dir(parent, mode=0o755, uid=uid, gid=gid)
                files, size = _one(
                    tree,
                    context,
                    match,
                    info,
                    target,
                    uid,
                    gid,
                    budget,
                    files,
                    size,
                    follow=path.is_symlink(),
                )
        out.append(Copied(source=source, destination=destination, files=files, bytes=size))
    return out


def _one(
    tree: Tree,
    root: Path,
    relative: str,
    info: os.stat_result,
    target: str,
    uid: int,
    gid: int,
    budget: _Budget,
    files: int,
    size: int,
    *,
    follow: bool = False,
) -> tuple[int, int]:
    what = f"the build context: {relative}"
    mode = info.st_mode
    if stat.S_ISDIR(mode):
        budget.take(0, what)
        tree.dir(target, mode=0o755, uid=uid, gid=gid)
        return files, size
    if stat.S_ISLNK(mode):
        budget.take(0, what)
        tree.symlink(target, str((root / relative).readlink()), uid=uid, gid=gid)
        return files + 1, size
    if not stat.S_ISREG(mode):
        raise InputError(
            f"[image] copy: {relative} is not a file, a folder or a link (a FIFO, a socket "
            "or a device); refusing to copy it.",
            hint=_HINT,
        )
    budget.take(info.st_size, what)
    path = (root / relative).resolve() if follow else root / relative
    with open_regular(path, what, follow=follow) as handle:
        content = tree.store.copy(
            handle, cap=info.st_size, what=what, limit_name="its size when listed"
        )
    tree.file(target, content, mode=_mode(mode), uid=uid, gid=gid)
    return files + 1, size + content.size
