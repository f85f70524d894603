"""The Python layer: a standalone interpreter if the lock has one, the venv, and the locked
wheels installed into it by the ``installer`` library for the *target* interpreter.

The venv is written as ``python -m venv`` makes it on POSIX, from the lock alone:
``pyvenv.cfg`` naming the locked interpreter and its exact version, ``bin/python3.X``
linking to the interpreter (``python`` and ``python3`` to that), ``lib/python3.X/
site-packages``, ``lib64`` → ``lib``, ``include``, and a small ``bin/activate``.  Wheels
are installed in name order with installer's core and this module's destination: the
scheme paths of the venv (purelib/platlib ``lib/python3.X/site-packages``, scripts
``bin``, data the venv, headers ``include/site/python3.X/<name>``), console scripts and
``#!python`` shebangs for ``<venv>/bin/python``, ``INSTALLER`` = ``reprolock``, RECORD
written by installer (with the bytecode, as pip lists it).  Files inside a wheel's
``__pycache__`` are skipped, as installer does.

Bytecode is written only by a `Compiler` for the target's feature release (the host's
CPython of that release, run apart so its output depends only on the sources): every
``.py`` in site-packages gets an *unchecked hash-based* ``__pycache__/<name>.cpython-3X
.pyc`` (PEP 552: no mtime in it; CPython imports it without comparing it with its
source), at optimization level 0, its code naming the file's path in the image.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import posixpath
import tarfile
import warnings
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import IO, BinaryIO, Protocol, cast

import installer
from installer.destinations import WheelDestination
from installer.exceptions import InstallerError
from installer.records import Hash, RecordEntry
from installer.scripts import InvalidScript, Script
from installer.sources import WheelFile
from installer.utils import Scheme, construct_record_file, fix_shebang

from reprolock import limits
from reprolock.bounded import Decompressor, Replay, sniff
from reprolock.build.tree import Content, Tree, clean
from reprolock.errors import InputError, SourceError
from reprolock.image.tarheaders import members, open_tar
from reprolock.lock import Interpreter, PythonPackage, Wheel
from reprolock.model.paths import UnsafePath, check_name

INSTALLER = b"reprolock\n"
_HOSTILE = "The wheel is damaged or hostile; do not use it."


class Compiler(Protocol):
    """Byte-compiles sources for one CPython feature release."""

    @property
    def tag(self) -> str:
        """The cache tag of the pycs it writes: ``cpython-311``."""
        ...

    def compile(self, sources: Sequence[tuple[str, bytes]]) -> list[bytes | None]:
        """A pyc for each (path in the image, source); None for a source that does not
        compile (pip leaves those without bytecode too)."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Installed:
    name: str
    version: str
    wheel: str
    files: int
    pycs: int


@dataclass(slots=True, kw_only=True)
class PythonLayer:
    venv: str
    packages: list[Installed] = field(default_factory=list)
    bytecode: str | None = None  # the cache tag compiled for, or None


def feature(version: str) -> str:
    """``3.11`` of ``3.11.2``."""
    return ".".join(version.split(".")[:2])


def venv_skeleton(tree: Tree, venv: str, interpreter: Interpreter, *, bits64: bool) -> None:
    """What ``<interpreter> -m venv <venv>`` writes (without pip)."""
    release = feature(interpreter.version)
    home, exename = posixpath.split(interpreter.path)
    lines = [
        f"home = {home}",
        "include-system-site-packages = false",
        f"version = {interpreter.version}",
    ]
    if tuple(int(p) for p in release.split(".")) >= (3, 11):
        lines += [
            f"executable = {interpreter.path}",
            f"command = {interpreter.path} -m venv {venv}",
        ]
    tree.dir(venv)
    tree.data(f"{venv}/pyvenv.cfg", ("\n".join(lines) + "\n").encode())
    tree.dir(f"{venv}/bin")
    tree.dir(f"{venv}/include")
    tree.dir(f"{venv}/lib")
    tree.dir(f"{venv}/lib/python{release}")
    tree.dir(f"{venv}/lib/python{release}/site-packages")
    if bits64:
        tree.symlink(f"{venv}/lib64", "lib")
    tree.symlink(f"{venv}/bin/{exename}", interpreter.path)
    for name in ("python", "python3", f"python{release}"):
        if name != exename:
            tree.symlink(f"{venv}/bin/{name}", exename)
    tree.data(f"{venv}/bin/activate", _activate(venv).encode())


def _activate(venv: str) -> str:
    """A POSIX ``activate`` (the venv's PATH and VIRTUAL_ENV; ``deactivate`` undoes it)."""
    return (
        "# This file must be used with `. bin/activate` from a POSIX shell (written by\n"
        "# reprolock build; the image's PATH already starts with the venv).\n"
        "deactivate () {\n"
        '    if [ -n "${_OLD_VIRTUAL_PATH:-}" ]; then PATH="$_OLD_VIRTUAL_PATH"; '
        "export PATH; unset _OLD_VIRTUAL_PATH; fi\n"
        "    unset VIRTUAL_ENV\n"
        '    if [ "${1:-}" != "nondestructive" ]; then unset -f deactivate; fi\n'
        "}\n"
        "deactivate nondestructive\n"
        f"VIRTUAL_ENV={venv}\n"
        "export VIRTUAL_ENV\n"
        '_OLD_VIRTUAL_PATH="$PATH"\n'
        'PATH="$VIRTUAL_ENV/bin:$PATH"\n'
        "export PATH\n"
        "hash -r 2>/dev/null || true\n"
    )


def _record_hash(digest: bytes) -> Hash:
    return Hash("sha256", base64.urlsafe_b64encode(digest).decode("ascii").rstrip("="))


class _Destination(WheelDestination):
    """Writes a wheel's files into the layer tree (never to disk)."""

    def __init__(self, tree: Tree, schemes: dict[str, str], interpreter: str, what: str) -> None:
        self.tree = tree
        self.schemes = schemes
        self.interpreter = interpreter
        self.what = what
        self.contents: dict[tuple[str, str], Content] = {}
        self.pycs = 0
        self.compiler: Compiler | None = None

    def _target(self, scheme: str, path: str) -> str:
        return posixpath.join(self.schemes[scheme], clean(path, self.what))

    def _write(self, scheme: str, path: str, stream: BinaryIO, mode: int) -> RecordEntry:
        target = self._target(scheme, path)
        digest = hashlib.sha256()
        content = self.tree.store.copy(
            stream,
            cap=limits.current().member_bytes,
            what=f"{self.what}: {path}",
            limit_name="member_bytes",
            on_data=digest.update,
        )
        self.tree.file(target, content, mode=mode)
        self.contents[(scheme, path)] = content
        return RecordEntry(path, _record_hash(digest.digest()), content.size)

    def write_file(
        self,
        scheme: Scheme,
        path: str | object,
        stream: BinaryIO,
        is_executable: bool,
    ) -> RecordEntry:
        text = str(path)
        if scheme == "scripts":
            with fix_shebang(stream, self.interpreter) as fixed:
                return self._write(scheme, text, fixed, 0o755)
        return self._write(scheme, text, stream, 0o755 if is_executable else 0o644)

    def write_script(self, name: str, module: str, attr: str, section: str) -> RecordEntry:
        try:
            check_name(name)
            script = Script(name, module, attr, section)  # type: ignore[arg-type]
            script_name, data = script.generate(self.interpreter, "posix")
        except (UnsafePath, InvalidScript, ValueError) as exc:
            raise SourceError(
                f"{self.what}: a bad entry point {name[:60]!r} ({exc}).", hint=_HOSTILE
            ) from None
        return self._write("scripts", script_name, io.BytesIO(data), 0o755)

    def finalize_installation(
        self,
        scheme: Scheme,
        record_file_path: str,
        records: Iterable[tuple[Scheme, RecordEntry]],
    ) -> None:
        listed = list(records)
        if self.compiler is not None:
            listed = self._compile(listed)

        def prefix(file_scheme: Scheme) -> str | None:
            if file_scheme == scheme:
                return None
            return posixpath.relpath(self.schemes[file_scheme], self.schemes[scheme]) + "/"

        with construct_record_file(listed, prefix) as stream:
            data = stream.read()
        self.tree.data(self._target(scheme, record_file_path), data)

    def _compile(
        self, records: list[tuple[Scheme, RecordEntry]]
    ) -> list[tuple[Scheme, RecordEntry]]:
        assert self.compiler is not None
        sources: list[tuple[Scheme, str]] = [
            (scheme, record.path)
            for scheme, record in records
            if scheme in ("purelib", "platlib")
            and record.path.endswith(".py")
            and (scheme, record.path) in self.contents
        ]
        compiled = self.compiler.compile(
            [
                ("/" + self._target(s, p), self.tree.store.read(self.contents[(s, p)]))
                for s, p in sources
            ]
        )
        added: list[tuple[Scheme, RecordEntry]] = []
        for (scheme, path), pyc in zip(sources, compiled, strict=True):
            if pyc is None:
                continue
            folder, leaf = posixpath.split(path)
            name = posixpath.join(
                folder, "__pycache__", f"{leaf.removesuffix('.py')}.{self.compiler.tag}.pyc"
            )
            self.tree.data(self._target(scheme, name), pyc)
            added.append(
                (scheme, RecordEntry(name, _record_hash(hashlib.sha256(pyc).digest()), len(pyc)))
            )
            self.pycs += 1
        return records + added


def _check_zip(archive: zipfile.ZipFile, what: str) -> None:
    """Refuse a wheel too big, too many files, or a compression bomb, before reading it."""
    caps = limits.current()
    infos = archive.infolist()
    if len(infos) > caps.archive_members:
        raise limits.exceeded(f"{what}: its files", "archive_members")
    total = 0
    for info in infos:
        total += info.file_size
        if info.file_size > caps.member_bytes:
            raise limits.exceeded(f"{what}: {info.filename[:100]}", "member_bytes")
        if (
            info.file_size > caps.decompression_floor
            and info.file_size > caps.decompression_ratio * max(info.compress_size, 1)
        ):
            raise SourceError(
                f"{what}: {info.filename[:100]} expands {info.file_size >> 20} MiB from "
                f"{info.compress_size >> 10} KiB: refusing a decompression bomb.",
                hint=_HOSTILE,
            )
        if "\x00" in info.filename or info.filename.startswith("/") or "\\" in info.filename:
            raise SourceError(f"{what}: a file name {info.filename[:100]!r} is unsafe.")
    if total > caps.layer_bytes:
        raise limits.exceeded(f"{what} (unpacked)", "layer_bytes")


def install_wheel(
    tree: Tree,
    stream: IO[bytes],
    wheel: Wheel,
    package: PythonPackage,
    *,
    venv: str,
    release: str,
    compiler: Compiler | None,
) -> Installed:
    """Install one wheel (``stream``: its bytes, already checked against the lock's
    sha256) into the venv of ``tree``."""
    what = wheel.filename
    site = f"{venv}/lib/python{release}/site-packages"
    schemes = {
        "purelib": site,
        "platlib": site,
        "scripts": f"{venv}/bin",
        "data": venv,
        "headers": f"{venv}/include/site/python{release}/{package.name}",
    }
    destination = _Destination(tree, schemes, f"{venv}/bin/python", what)
    destination.compiler = compiler
    try:
        with zipfile.ZipFile(stream) as archive:
            archive.filename = wheel.filename  # installer reads name and version from it
            _check_zip(archive, what)
            source = WheelFile(archive)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # files in __pycache__: skipped, as it says
                installer.install(source, destination, {"INSTALLER": INSTALLER})
    except (
        InstallerError,
        zipfile.BadZipFile,
        KeyError,
        ValueError,
        EOFError,
        OSError,
        RuntimeError,  # an encrypted member
        NotImplementedError,  # a compression zipfile does not know
        zlib.error,
        csv.Error,
    ) as exc:
        if isinstance(exc, SourceError | InputError):
            raise
        raise SourceError(
            f"{what}: not an installable wheel ({str(exc)[:200] or type(exc).__name__}).",
            hint=_HOSTILE,
        ) from None
    return Installed(
        name=package.name,
        version=package.version,
        wheel=wheel.filename,
        files=len(destination.contents),
        pycs=destination.pycs,
    )


def unpack_standalone(tree: Tree, stream: IO[bytes], prefix: str, what: str) -> int:
    """A python-build-standalone ``install_only`` tarball (``python/…``) unpacked to
    ``prefix`` (``/opt/python``), as ``tar -xzf -C /opt --no-same-owner`` does; every
    member must lie under its top folder.  The number of members."""
    parent, top = posixpath.split(prefix.rstrip("/"))
    head = stream.read(6)
    source = Decompressor(
        cast(IO[bytes], Replay(head, stream)),
        sniff(head),
        what=what,
        max_output=limits.current().layer_bytes,
        limit_name="layer_bytes",
    )
    tar = open_tar(cast(IO[bytes], source), what, hint=_HOSTILE)
    count = 0
    for member in members(tar, what, hint=_HOSTILE):
        name = clean(member.name, what)
        if not name:
            continue
        if name != top and not name.startswith(top + "/"):
            raise SourceError(
                f"{what}: {name[:100]} lies outside its {top}/ folder.", hint=_HOSTILE
            )
        path = posixpath.join(parent, name)
        mtime = max(int(member.mtime), 0)
        if member.isdir():
            tree.dir(path, mode=member.mode, mtime=mtime)
        elif member.isreg():
            handle = tar.extractfile(member)
            assert handle is not None
            try:
                content = tree.store.copy(
                    handle, cap=member.size, what=f"{what}: {name}", limit_name="member_bytes"
                )
            except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
                raise SourceError(f"{what}: {name} is truncated or corrupt ({exc}).") from None
            tree.file(path, content, mode=member.mode, mtime=mtime)
        elif member.issym():
            tree.symlink(path, member.linkname, mtime=mtime)
        elif member.islnk():
            tree.hardlink(path, tree.real(posixpath.join(parent, clean(member.linkname, what))))
        else:
            raise SourceError(f"{what}: {name[:100]} is a device or a FIFO.", hint=_HOSTILE)
        count += 1
    return count


def python_layer(
    tree: Tree,
    *,
    venv: str,
    interpreter: Interpreter,
    wheels: Sequence[tuple[PythonPackage, Wheel, IO[bytes]]],
    compiler: Compiler | None,
    bits64: bool,
) -> PythonLayer:
    """The venv and every wheel (in name order) in ``tree``."""
    release = feature(interpreter.version)
    venv_skeleton(tree, venv, interpreter, bits64=bits64)
    layer = PythonLayer(venv=venv, bytecode=None if compiler is None else compiler.tag)
    for package, wheel, stream in sorted(wheels, key=lambda w: w[0].name):
        layer.packages.append(
            install_wheel(
                tree, stream, wheel, package, venv=venv, release=release, compiler=compiler
            )
        )
    return layer
