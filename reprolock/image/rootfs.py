"""A root filesystem folder (``dir:PATH``), e.g. ``dir:/`` inside a running container."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from pathlib import Path

from reprolock.errors import SourceError
from reprolock.image.scan import Entry, LayerScan, WantContent, WantHash

SKIP = ("proc", "sys", "dev", "run", "tmp")  # pseudo or volatile filesystems


def scan_rootfs(root: Path, *, want_content: WantContent, want_hash: WantHash) -> LayerScan:
    """The folder as one layer: nothing outside it is read; links are not followed."""
    if not root.is_dir():
        raise SourceError(f"dir:{root}: no such folder.")
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
            entry = Entry(path=rel, kind="other", size=info.st_size, mode=info.st_mode)
            if stat.S_ISDIR(info.st_mode):
                entry.kind = "dir"
            elif stat.S_ISLNK(info.st_mode):
                entry.kind = "symlink"
                entry.link = os.readlink(full)
            elif stat.S_ISREG(info.st_mode):
                entry.kind = "file"
                keep, digest = want_content(rel), want_hash(rel)
                if keep or digest:
                    try:
                        data = Path(full).read_bytes()
                    except OSError:
                        continue
                    if keep:
                        entry.content = data
                    if digest:
                        raw = hashlib.sha256(data).digest()
                        entry.sha256 = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
            scan.entries.append(entry)
    return scan
