"""Source distributions, read as the hostile archives they may be.

An sdist is a ``.tar.gz`` (PEP 625; older ones a ``.zip``) holding one top folder with
the project's sources and a ``pyproject.toml`` whose ``[build-system]`` names the
PEP 517 backend and what it needs to run.  This module reads those facts from the
archive's bytes, without running anything:

* `members` walks the archive within the limits (`reprolock.limits`: member count,
  unpacked bytes, decompression ratio) and refuses links, devices and paths that are
  absolute, climb out with ``..`` or leave the one top folder;
* `read_sdist` gives the build system (PEP 518 defaults when it is not declared) and
  whether the package compiles extension modules, which decides where it is built.
"""

from __future__ import annotations

import io
import posixpath
import re
import tarfile
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from packaging.requirements import InvalidRequirement, Requirement

from reprolock import limits
from reprolock.bounded import Decompressor
from reprolock.errors import SourceError

# PEP 517: without [build-system] (or without its build-backend), the project is built as
# setuptools always built it.
LEGACY_BACKEND = "setuptools.build_meta:__legacy__"
LEGACY_REQUIRES = ("setuptools>=40.8.0",)
_BACKEND = re.compile(
    r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*(:[A-Za-z_][A-Za-z0-9_.]*)?"
)
# Backends and build requirements that exist to compile code for the platform.
_COMPILING_BACKENDS = ("scikit_build_core", "mesonpy", "maturin", "pdm.backend.hooks.build_ext")
_COMPILING_REQUIRES = frozenset(
    {"cython", "pybind11", "setuptools-rust", "cffi", "scikit-build", "nanobind", "numpy"}
)
_EXTENSION_CALL = re.compile(rb"\b(ext_modules|Extension\s*\(|cythonize\s*\()")
_READ = ("pyproject.toml", "setup.py", "setup.cfg", "PKG-INFO")
_SMALL = 4 * 1024 * 1024  # the most of one of those files read into memory


class SdistProblem(Exception):
    """The archive is not a safe, readable sdist (the message says why)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildSystem:
    """``[build-system]`` as the sdist declares it (PEP 518 defaults filled in)."""

    requires: tuple[str, ...]
    backend: str
    backend_path: tuple[str, ...] = ()
    declared: bool = True  # False: no pyproject.toml [build-system], the legacy defaults


@dataclass(frozen=True, slots=True, kw_only=True)
class SdistFacts:
    """What reprolock needs to know about an sdist before building it."""

    top: str  # the one top folder, e.g. "promise-2.3"
    build_system: BuildSystem
    compiles: str | None  # why it compiles extension modules, or None for pure Python
    pkg_info: bytes | None  # PKG-INFO as found


@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    """One file or folder of an sdist, with its path below the top folder. A file's bytes
    are read from the archive as they are asked for (`read`, `copy_to`), until the next
    member is taken: never more than one chunk of a large file is held in memory."""

    path: str  # "src/pkg/__init__.py" (POSIX, relative, no ..); "" for the top folder
    is_dir: bool
    executable: bool
    size: int = 0  # the file's size, as the archive declares it
    reader: IO[bytes] | None = None  # the file's bytes (None for a folder)

    def read(self) -> bytes:
        """The whole file (for the small files reprolock parses)."""
        data = self._read(self.size + 1)
        if len(data) != self.size:
            raise SdistProblem(f"member {self.path[:200]!r} is not the size it declares")
        return data

    def copy_to(self, out: IO[bytes]) -> None:
        """The file's bytes written to ``out``, a chunk at a time (a failing write is the
        caller's `OSError`; a failing read, `SdistProblem`)."""
        copied = 0
        while chunk := self._read(_CHUNK):
            copied += len(chunk)
            if copied > self.size:
                break
            out.write(chunk)
        if copied != self.size:
            raise SdistProblem(f"member {self.path[:200]!r} is not the size it declares")

    def _read(self, size: int) -> bytes:
        if self.reader is None:
            return b""
        try:
            return self.reader.read(size)
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
            raise SdistProblem(f"member {self.path[:200]!r} cannot be read ({exc})") from None


_CHUNK = 1 << 20


def members(data: bytes, filename: str) -> Iterator[tuple[str, Member]]:
    """``(top folder, member)`` for every member of the sdist ``filename`` (its bytes),
    in archive order; `SdistProblem` for anything unsafe or beyond the limits."""
    if filename.endswith(".zip"):
        yield from _zip_members(data)
    else:
        yield from _tar_members(data, filename)


def _check_path(name: str, tops: set[str]) -> tuple[str, str]:
    """The member ``name`` split into (top folder, path below it), checked."""
    if "\\" in name or "\x00" in name or name.startswith("/"):
        raise SdistProblem(f"member {name[:200]!r} has an absolute or unsafe path")
    clean = posixpath.normpath(name)
    parts = [p for p in clean.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise SdistProblem(f"member {name[:200]!r} climbs out of the archive")
    if len(parts) > limits.current().path_depth:
        raise SdistProblem(f"member {name[:200]!r} is nested too deep")
    tops.add(parts[0])
    if len(tops) > 1:
        raise SdistProblem(f"it has more than one top folder ({', '.join(sorted(tops))[:200]})")
    return parts[0], "/".join(parts[1:])


class _Budget:
    def __init__(self) -> None:
        caps = limits.current()
        self.members = caps.sdist_members
        self.bytes = caps.sdist_unpacked_bytes

    def take(self, size: int, name: str) -> None:
        self.members -= 1
        self.bytes -= size
        if self.members < 0:
            raise limits.exceeded(f"the members of {name}", "sdist_members")
        if self.bytes < 0:
            raise limits.exceeded(f"{name} unpacked", "sdist_unpacked_bytes")


def _tar_members(data: bytes, filename: str) -> Iterator[tuple[str, Member]]:
    caps = limits.current()
    stream = Decompressor(
        io.BytesIO(data),
        "gzip" if data[:2] == b"\x1f\x8b" else "plain",
        what=filename,
        max_output=caps.sdist_unpacked_bytes + caps.tar_header_bytes,
        limit_name="sdist_unpacked_bytes",
    )
    budget = _Budget()
    tops: set[str] = set()
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for info in tar:
                if info.type in (tarfile.XHDTYPE, tarfile.XGLTYPE):
                    continue
                if not (info.isreg() or info.isdir()):
                    kind = "a link" if info.issym() or info.islnk() else "a special file"
                    raise SdistProblem(f"member {info.name[:200]!r} is {kind}")
                top, path = _check_path(info.name, tops)
                budget.take(info.size, filename)
                yield (
                    top,
                    Member(
                        path=path,
                        is_dir=info.isdir(),
                        executable=bool(info.mode & 0o111) and info.isreg(),
                        size=info.size if info.isreg() else 0,
                        reader=tar.extractfile(info) if info.isreg() else None,
                    ),
                )
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise SdistProblem(f"it is not a readable tar.gz ({exc})") from None


def _zip_members(data: bytes) -> Iterator[tuple[str, Member]]:
    budget = _Budget()
    tops: set[str] = set()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            for info in infos:
                mode = info.external_attr >> 16
                if mode and (mode & 0o170000) not in (0, 0o100000, 0o040000):
                    raise SdistProblem(f"member {info.filename[:200]!r} is a link or special file")
                top, path = _check_path(info.filename, tops)
                budget.take(info.file_size, "the sdist")
                is_dir = info.is_dir()
                if is_dir:
                    yield top, Member(path=path, is_dir=True, executable=False)
                    continue
                with archive.open(info) as handle:
                    yield (
                        top,
                        Member(
                            path=path,
                            is_dir=False,
                            executable=bool(mode & 0o111),
                            size=info.file_size,
                            reader=handle,
                        ),
                    )
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as exc:
        raise SdistProblem(f"it is not a readable zip ({exc})") from None


def read_sdist(data: bytes, filename: str) -> SdistFacts:
    """The facts of the sdist ``filename`` from its bytes; `SourceError` naming it when
    the archive is unsafe or its ``pyproject.toml`` is broken."""
    found: dict[str, bytes] = {}
    top = ""
    sources = False
    try:
        for folder, member in members(data, filename):
            top = folder
            if member.path in _READ and not member.is_dir and member.size <= _SMALL:
                found[member.path] = member.read()
            if member.path.endswith((".c", ".cc", ".cpp", ".cxx", ".pyx", ".f90", ".cu")):
                sources = True
    except SdistProblem as exc:
        raise _unsafe(filename, str(exc)) from None
    if not top:
        raise _unsafe(filename, "it is empty")
    build_system = parse_build_system(found.get("pyproject.toml"), filename)
    return SdistFacts(
        top=top,
        build_system=build_system,
        compiles=compiles(build_system, found.get("setup.py"), sources=sources),
        pkg_info=found.get("PKG-INFO"),
    )


def _unsafe(filename: str, why: str) -> SourceError:
    return SourceError(
        f"{filename} is not a safe, readable source distribution: {why}.",
        hint="Do not build it: pin a version that has a wheel, or list the package in "
        "[python] no-build.",
    )


def parse_build_system(text: bytes | None, filename: str) -> BuildSystem:
    """``[build-system]`` of ``pyproject.toml`` (None: the file is absent), with the
    PEP 517/518 defaults; `SourceError` when it is malformed."""
    if text is None:
        return BuildSystem(requires=LEGACY_REQUIRES, backend=LEGACY_BACKEND, declared=False)
    try:
        document = tomllib.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise _broken(filename, f"pyproject.toml is not valid TOML ({exc})") from None
    table = document.get("build-system")
    if table is None:
        return BuildSystem(requires=LEGACY_REQUIRES, backend=LEGACY_BACKEND, declared=False)
    if not isinstance(table, dict):
        raise _broken(filename, "[build-system] is not a table")
    requires = table.get("requires")
    if requires is None:
        # PEP 518: a [build-system] without requires is an error; pip builds it as legacy
        requires = list(LEGACY_REQUIRES)
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
        raise _broken(filename, "build-system.requires is not a list of strings")
    for text_req in requires:
        try:
            Requirement(text_req)
        except InvalidRequirement:
            raise _broken(
                filename, f"build-system.requires has {text_req[:200]!r}, not PEP 508"
            ) from None
    backend = table.get("build-backend", LEGACY_BACKEND)
    if not isinstance(backend, str) or len(backend) > 200 or not _BACKEND.fullmatch(backend):
        raise _broken(
            filename, f"build-system.build-backend {str(backend)[:200]!r} is not module:object"
        )
    backend_path = table.get("backend-path", [])
    if not isinstance(backend_path, list) or not all(
        isinstance(p, str)
        and p
        and not p.startswith("/")
        and ".." not in p.split("/")
        and "\\" not in p
        for p in backend_path
    ):
        raise _broken(filename, "build-system.backend-path is not a list of folders inside it")
    return BuildSystem(
        requires=tuple(requires),
        backend=backend,
        backend_path=tuple(backend_path),
        declared="build-backend" in table,
    )


def _broken(filename: str, why: str) -> SourceError:
    return SourceError(
        f"{filename}: {why}.",
        hint="The sdist cannot be built as published: pin a version that has a wheel, or "
        "list the package in [python] no-build.",
    )


def compiles(build_system: BuildSystem, setup_py: bytes | None, *, sources: bool) -> str | None:
    """Why the sdist builds a platform-specific wheel (extension modules), or None."""
    backend = build_system.backend.split(":")[0]
    if backend.startswith(_COMPILING_BACKENDS):
        return f"its build backend {backend} compiles extension modules"
    names = set()
    for text in build_system.requires:
        try:
            names.add(Requirement(text).name.lower().replace("_", "-"))
        except InvalidRequirement:
            continue
    needs = sorted(names & _COMPILING_REQUIRES)
    if needs and sources:
        return f"it needs {', '.join(needs)} to build and ships C/C++/Cython sources"
    if setup_py is not None and _EXTENSION_CALL.search(setup_py):
        return "its setup.py declares extension modules (ext_modules)"
    return None
