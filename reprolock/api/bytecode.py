"""Bytecode for the target's Python, written by a CPython of its feature release on this
machine, so that the same sources give the same bytes.

``marshal`` output depends on what the writing process holds (an object referenced
elsewhere in the process is written with a reference flag), so each batch is compiled in
a fresh process (``-S -s``, ``PYTHONHASHSEED=0``, a minimal environment, ``/`` as its
folder) that imports nothing but builtins: the same CPython with the same sources in the
same order writes the same bytes.  Each pyc is *unchecked hash-based* (PEP 552: the
source's SipHash, no mtime; CPython imports it without comparing it with the source), at
optimization level 0, its code naming the file's path in the image.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from reprolock.errors import SourceError

_WORKER = r"""
import sys, marshal, _imp, _frozen_importlib_external as e
data = sys.stdin.buffer.read()
out = sys.stdout.buffer
info = "%d.%d %s %s\n" % (sys.version_info[0], sys.version_info[1],
                          sys.implementation.cache_tag, sys.version.split()[0])
out.write(info.encode())
key = int.from_bytes(e.MAGIC_NUMBER, "little")
pos = 0
while pos < len(data):
    n = int.from_bytes(data[pos:pos + 4], "big")
    name = data[pos + 4:pos + 4 + n].decode("utf-8", "surrogateescape")
    pos += 4 + n
    m = int.from_bytes(data[pos:pos + 8], "big")
    src = data[pos + 8:pos + 8 + m]
    pos += 8 + m
    try:
        code = compile(src, name, "exec", dont_inherit=True, optimize=0)
        pyc = (e.MAGIC_NUMBER + (1).to_bytes(4, "little") + _imp.source_hash(key, src)
               + marshal.dumps(code))
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        out.write((2**64 - 1).to_bytes(8, "big"))
        continue
    out.write(len(pyc).to_bytes(8, "big"))
    out.write(pyc)
"""
_FAILED = 2**64 - 1


class HostCompiler:
    """Byte-compiles with a CPython of the target's feature release on this machine, in a
    fresh process per batch (``-S -s``, ``PYTHONHASHSEED=0``, a minimal environment): marshal
    output depends on what a process holds (reference counts), so a fresh process with
    the same sources in the same order writes the same bytes."""

    def __init__(self, python: str, release: str) -> None:
        self.python = python
        self.release = release
        self.version = ""
        major, minor = release.split(".")
        self._tag = f"cpython-{major}{minor}"

    @property
    def tag(self) -> str:
        return self._tag

    def compile(self, sources: Sequence[tuple[str, bytes]]) -> list[bytes | None]:
        if not sources:
            return []
        stream = b"".join(
            len(p.encode("utf-8", "surrogateescape")).to_bytes(4, "big")
            + p.encode("utf-8", "surrogateescape")
            + len(s).to_bytes(8, "big")
            + s
            for p, s in sources
        )
        try:
            done = subprocess.run(
                [self.python, "-S", "-s", "-B", "-c", _WORKER],
                input=stream,
                capture_output=True,
                env={"PYTHONHASHSEED": "0", "LC_ALL": "C.UTF-8", "PATH": "/usr/bin:/bin"},
                cwd="/",
                check=False,
            )
        except OSError as exc:
            raise SourceError(f"cannot run {self.python}: {exc.strerror or exc}.") from None
        if done.returncode != 0:
            raise SourceError(
                f"{self.python} failed while byte-compiling (exit {done.returncode}): "
                + done.stderr.decode(errors="replace")[-300:],
                hint="Build with --bytecode no to leave the image without .pyc files.",
            )
        head, _, rest = done.stdout.partition(b"\n")
        parts = head.decode(errors="replace").split()
        if parts[:2] != [self.release, self._tag]:
            raise SourceError(
                f"{self.python} is {' '.join(parts[:2]) or 'not CPython'}, not CPython "
                f"{self.release}.",
                hint="Build with --bytecode no.",
            )
        self.version = parts[2] if len(parts) > 2 else self.version
        out: list[bytes | None] = []
        position = 0
        for _ in sources:
            size = int.from_bytes(rest[position : position + 8], "big")
            position += 8
            if size == _FAILED:
                out.append(None)
                continue
            out.append(rest[position : position + size])
            position += size
        return out
