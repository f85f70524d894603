"""A root filesystem folder (``dir:PATH``), e.g. ``dir:/`` inside a running container."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from pathlib import Path

from reprolock.bounded import STEP
from reprolock.errors import SourceError
from reprolock.image.scan import Entry, LayerScan, ReadBudget, WantContent, WantHash

SKIP = ("proc", "sys", "dev", "run", "tmp")  # pseudo or volatile filesystems
_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def scan_rootfs(
    root: Path,
    *,
    want_content: WantContent,
    want_hash: WantHash,
    budget: ReadBudget | None = None,
) -> LayerScan:
    """The folder as one layer: nothing outside it is read; links are not followed, and
    only regular files are opened (never a FIFO or a device), read within the catalogers'
    budget (an omitted file is recorded as such, as in a layer)."""
    if not root.is_dir():
        raise SourceError(f"dir:{root}: no such folder.")
    budget = budget or ReadBudget()
    scan = LayerScan(index=0)
    top = str(root)
    for folder, dirs, files in os.walk(top):
        rel_folder = os.path.relpath(folder, top)
        rel_folder = "" if rel_folder == "." else rel_folder
        if not rel_folder:
            dirs[:] = [d for d in dirs if d not in SKIP]
        for name in sorted(dirs + files):
            full = os.path.join(folder, name)
            rel = f"{rel_folder}/{name}" if rel_folder else name
            try:
                info = os.lstat(full)
            except OSError:
                continue
            # a name that is not UTF-8 is shown with U+FFFD (as in a layer)
            shown = os.fsencode(rel).decode("utf-8", errors="replace")
            entry = Entry(path=shown, kind="other", size=info.st_size, mode=info.st_mode)
            if stat.S_ISDIR(info.st_mode):
                entry.kind = "dir"
            elif stat.S_ISLNK(info.st_mode):
                entry.kind = "symlink"
                try:
                    entry.link = os.fsencode(os.readlink(full)).decode("utf-8", "replace")
                except OSError:
                    continue
            elif stat.S_ISREG(info.st_mode):
                entry.kind = "file"
                keep, digest = want_content(rel), want_hash(rel)
                if keep:
                    entry.omitted = budget.take(info.st_size)
                    keep = entry.omitted is None
                if (keep or digest) and not _read(full, entry, keep=keep, digest=digest):
                    continue
            budget.count(1, f"dir:{root}")
            scan.entries.append(entry)
    return scan


def _read(path: str, entry: Entry, *, keep: bool, digest: bool) -> bool:
    """Keep and/or hash the regular file at ``path`` (no more than the size it had when
    listed); False if it is gone or is no longer a regular file."""
    try:
        fd = os.open(path, _FLAGS)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        hasher = hashlib.sha256()
        parts: list[bytes] = []
        left = entry.size
        while left > 0 and (chunk := os.read(fd, min(STEP, left))):
            left -= len(chunk)
            if digest:
                hasher.update(chunk)
            if keep:
                parts.append(chunk)
    except OSError:
        return False
    finally:
        os.close(fd)
    if keep:
        entry.content = b"".join(parts)
    if digest:
        entry.sha256 = base64.urlsafe_b64encode(hasher.digest()).rstrip(b"=").decode()
    return True
