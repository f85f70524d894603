"""Is a ``.pyc`` the bytecode of the source beside it?  Read from its 16-byte header.

CPython writes a header before the code (PEP 552): the interpreter's magic number, flags,
then either the source's mtime and size (a *timestamp* pyc, what ``pip install`` and
``compileall`` write by default) or a SipHash of the source's bytes (a *hash-based* pyc,
written when ``SOURCE_DATE_EPOCH`` is set or asked for).  An installer that byte-compiles
after unpacking a wheel overwrites any pyc the wheel shipped (numpy 2.1.3 ships one): the
new pyc differs from RECORD's hash but matches its source, which is what the interpreter
checks too.  A pyc that matches no source is *stale*; one whose source is gone is an
*orphan*.  A header proves consistency, not origin: bytecode written to match a source's
header is not detected (nothing short of compiling the source with that interpreter
would).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Literal

from reprolock.image.view import FilesystemView, Node

HEADER_BYTES = 16
# The magic number of each CPython feature release (fixed from its first release
# candidate), from CPython's Lib/importlib/_bootstrap_external.py; the tests compare the
# running interpreter's `importlib.util.MAGIC_NUMBER` with its row.
MAGIC = {
    "3.7": 3394,
    "3.8": 3413,
    "3.9": 3425,
    "3.10": 3439,
    "3.11": 3495,
    "3.12": 3531,
    "3.13": 3571,
}
_FEATURE = re.compile(r"(?:^|/)lib/python(3\.[0-9]{1,2})/")
_CACHED = re.compile(r"(?P<name>[^/.]+)\.(?P<impl>[a-z]+)-(?P<version>[0-9]+)(?:\.opt-[12])?\.pyc")
_HASH_BASED, _CHECK_SOURCE = 0b01, 0b10

Verdict = Literal["matches", "stale", "orphan", "unknown"]


def key(magic: int) -> int:
    """The SipHash key CPython hashes sources with: its 4-byte magic, read little-endian."""
    return int.from_bytes(magic.to_bytes(2, "little") + b"\r\n", "little")


def source_keys(path: str) -> tuple[int, ...] | None:
    """For `reprolock.image.scan.Wants.source`: None unless ``path`` is a Python source in
    a package folder; else the key of the interpreter its ``lib/python3.X`` names (none
    when no folder names one, or the release is not in `MAGIC`)."""
    if not path.endswith(".py") or "-packages/" not in path:
        return None
    match = _FEATURE.search(path)
    magic = MAGIC.get(match.group(1)) if match else None
    return () if magic is None else (key(magic),)


def is_pyc(path: str) -> bool:
    """A bytecode file in a package folder (for `reprolock.image.scan.Wants.head`)."""
    return path.endswith(".pyc") and "-packages/" in path


def source_of(pyc: str) -> str | None:
    """The source a pyc in ``__pycache__`` was compiled from (``pkg/__pycache__/m.cpython-311
    .pyc`` → ``pkg/m.py``); None for a pyc elsewhere (a *sourceless* module, which Python
    imports when no ``m.py`` is beside it)."""
    folder, leaf = posixpath.split(pyc)
    if posixpath.basename(folder) != "__pycache__":
        return None
    match = _CACHED.fullmatch(leaf)
    if match is None:
        return None
    return posixpath.join(posixpath.dirname(folder), match.group("name") + ".py")


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    verdict: Verdict
    used: bool = False  # Python imports it although it does not match (see `check`)


def check(view: FilesystemView, pyc_path: str, pyc: Node) -> Check:
    """Whether the pyc at ``pyc_path`` matches its source in ``view``.

    ``used`` marks the two that Python would import anyway: an *unchecked* hash-based pyc
    (the interpreter never compares it with its source) that does not match, and a
    sourceless ``m.pyc`` outside ``__pycache__`` with no ``m.py`` beside it."""
    source_path = source_of(pyc_path)
    if source_path is None:
        legacy = pyc_path.removesuffix("c")  # pkg/m.pyc → pkg/m.py
        if view.node(legacy) is not None:
            return Check(verdict="matches")  # never imported while its source is there
        return Check(verdict="orphan", used=True)
    source = view.node(source_path)
    if source is None or source.entry.kind != "file":
        return Check(verdict="orphan")
    header = pyc.entry.head
    if header is None or len(header) < HEADER_BYTES or header[2:4] != b"\r\n":
        return Check(verdict="unknown" if header is None else "stale")
    magic = int.from_bytes(header[:2], "little")
    flags = int.from_bytes(header[4:8], "little")
    if flags & ~(_HASH_BASED | _CHECK_SOURCE) or magic != _magic_of(pyc_path, magic):
        return Check(verdict="stale")  # the interpreter refuses such a header
    if not flags & _HASH_BASED:
        mtime = int.from_bytes(header[8:12], "little")
        size = int.from_bytes(header[12:16], "little")
        same = mtime == source.entry.mtime & 0xFFFFFFFF and size == source.entry.size & 0xFFFFFFFF
        return Check(verdict="matches" if same else "stale")
    return _hash_based(source_path, source, header[8:16], magic, flags)


def _magic_of(pyc_path: str, magic: int) -> int:
    """The magic its name's tag says (``m.cpython-311.pyc``: 3.11's); ``magic`` itself when
    the tag names no release in `MAGIC`."""
    match = _CACHED.fullmatch(posixpath.basename(pyc_path))
    if match is None or match.group("impl") != "cpython":
        return magic
    version = match.group("version")
    return MAGIC.get(f"{version[:1]}.{version[1:]}", magic)


def _hash_based(source_path: str, source: Node, digest: bytes, magic: int, flags: int) -> Check:
    keys = source_keys(source_path) or ()
    if key(magic) not in keys or len(source.entry.source_hashes) != len(keys):
        return Check(verdict="unknown")  # its source was not hashed with this interpreter's key
    if source.entry.source_hashes[keys.index(key(magic))] == digest:
        return Check(verdict="matches")
    return Check(verdict="stale", used=not flags & _CHECK_SOURCE)
