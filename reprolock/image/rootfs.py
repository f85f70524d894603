"""A root filesystem folder (``dir:PATH``), e.g. ``dir:/`` inside a running container."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from pathlib import Path
from typing import Any

from reprolock.bounded import STEP
from reprolock.compat.fatbin import FatbinScanner
from reprolock.errors import SourceError
from reprolock.image.scan import (
    HEAD_BYTES,
    Entry,
    LayerScan,
    ReadBudget,
    WantContent,
    WantHash,
    WantKernels,
    Wants,
    WantSource,
    source_hashes,
)

SKIP = ("proc", "sys", "dev", "run", "tmp")  # pseudo or volatile filesystems
_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def scan_rootfs(
    root: Path,
    *,
    want_content: WantContent,
    want_hash: WantHash,
    want_md5: WantHash | None = None,
    want_head: WantHash | None = None,
    want_source: WantSource | None = None,
    want_kernels: WantKernels | None = None,
    budget: ReadBudget | None = None,
) -> LayerScan:
    """The folder as one layer: nothing outside it is read; links are not followed, and
    only regular files are opened (never a FIFO or a device), read within the catalogers'
    budget (an omitted file is recorded as such, as in a layer)."""
    if not root.is_dir():
        raise SourceError(f"dir:{root}: no such folder.")
    budget = budget or ReadBudget()
    defaults = Wants(want_content, want_hash)
    wants = Wants(
        want_content,
        want_hash,
        want_md5 or defaults.md5,
        want_head or defaults.head,
        want_source or defaults.source,
        want_kernels or defaults.kernels,
    )
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
                if not _file(full, entry, wants, budget, int(info.st_mtime)):
                    continue
            budget.count(1, f"dir:{root}")
            scan.entries.append(entry)
    return scan


def _file(path: str, entry: Entry, wants: Wants, budget: ReadBudget, mtime: int) -> bool:
    """What the scan keeps of the regular file at ``path`` (as a layer scan would); False
    if it is gone or is no longer a regular file."""
    rel = entry.path
    keep, head = wants.content(rel), wants.head(rel)
    keys = wants.source(rel)
    if keep:
        entry.omitted = budget.take(entry.size)
        keep = entry.omitted is None
    head = head and budget.take(min(entry.size, HEAD_BYTES)) is None
    if keys is not None:
        entry.mtime = mtime
        if entry.size > budget.per_file:
            keys = ()
    sha256, md5 = wants.hash(rel), wants.md5(rel)
    scanner = FatbinScanner() if wants.kernels(rel) else None
    if not (keep or head or keys or sha256 or md5 or scanner):
        return True
    data = _read(
        path, entry, sha256=sha256, md5=md5, whole=keep or bool(keys), head=head, scanner=scanner
    )
    if data is None:
        return False
    if scanner is not None:
        kernels = scanner.finish()
        entry.kernels = None if kernels.empty else kernels
    if keep:
        entry.content = data
    if head:
        entry.head = data[:HEAD_BYTES]
    if keys:
        entry.source_hashes = source_hashes(data, keys)
    return True


def _read(
    path: str,
    entry: Entry,
    *,
    sha256: bool,
    md5: bool,
    whole: bool,
    head: bool,
    scanner: FatbinScanner | None,
) -> bytes | None:
    """Hash the regular file at ``path`` as asked (no more than the size it had when
    listed), feed it to ``scanner``, and return its bytes (only the first chunk unless
    ``whole``; nothing unless ``whole`` or ``head``); None if it is gone or is no longer a
    regular file."""
    try:
        fd = os.open(path, _FLAGS)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        hashers = [h for h, wanted in ((hashlib.sha256(), sha256), (_md5(), md5)) if wanted]
        parts: list[bytes] = []
        left = entry.size
        while left > 0 and (chunk := os.read(fd, min(STEP, left))):
            left -= len(chunk)
            for hasher in hashers:
                hasher.update(chunk)
            if scanner is not None:
                scanner.feed(chunk)
            if whole or (head and not parts):
                parts.append(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    if sha256:
        entry.sha256 = base64.urlsafe_b64encode(hashers[0].digest()).rstrip(b"=").decode()
    if md5:
        entry.md5 = hashers[-1].hexdigest()
    return b"".join(parts)


def _md5() -> Any:
    return hashlib.md5(usedforsecurity=False)
