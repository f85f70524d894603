"""Source distributions at lock time: their metadata, and the build environment to lock.

For a release without a wheel for the target, the resolver asks `SdistBuilds.metadata`.
Once per sdist (by its sha256, remembered in the cache across runs):

1. the sdist is downloaded (bounded, checked against the index's sha256) and read
   (`reprolock.resolve.python.sdist`): its ``[build-system]`` and whether it compiles;
2. its build requirements are resolved by reprolock's own resolver, wheels only, for the
   target, and the pinned wheels unpacked into a fresh venv (`reprolock.pep517.env`);
3. the backend's ``get_requires_for_build_wheel`` may ask for more (setuptools' legacy
   backend asks for ``wheel``): those join the requirements, resolved again;
4. ``prepare_metadata_for_build_wheel`` (or a wheel build) runs in a subprocess of that
   venv (`reprolock.pep517.hooks`) — unless the index serves PEP 658 metadata for it.
   When only its sources suggest it compiles (a setup.py naming ``ext_modules``), the
   wheel is built here once: its tags decide (a pure wheel is built by ``fetch``, a
   platform wheel — or a build that fails here — in the image's build stage).

Per target, the requirements found are resolved for the target and recorded
(`SdistBuilds.build_env`): the lock's ``build`` table of the package.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import sys
import tempfile
import threading
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import requests
from packaging.requirements import Requirement
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from reprolock import limits
from reprolock.errors import ReprolockError, SourceError
from reprolock.lock import BuildEnv, BuildWhere, Wheel
from reprolock.net import http
from reprolock.net.cache import Cache
from reprolock.net.session import redact
from reprolock.resolve.python.finder import Fetcher
from reprolock.resolve.python.http_index import strip_credentials
from reprolock.resolve.python.index import DistFile
from reprolock.resolve.python.resolve import resolve_python
from reprolock.resolve.python.target import PythonTarget
from reprolock.spec import PythonSpec, SdistPolicy

if TYPE_CHECKING:  # the build machinery is imported when a build happens (most locks: never)
    from reprolock.pep517.hooks import Backend, BuildFailed

_FORMAT = 2  # of the cached preparation (2: the probe build's note)


@dataclass(frozen=True, slots=True, kw_only=True)
class Prepared:
    """What building an sdist's metadata found (cached by the sdist's sha256)."""

    metadata: bytes
    backend: str
    backend_path: tuple[str, ...]
    requires: tuple[str, ...]  # build-system.requires, then what the backend asked for
    compiles: str | None  # why it builds a platform-specific wheel; None: pure Python
    note: str | None = None  # why it is pure Python although its sources suggested otherwise


class SdistBuilds:
    """`SdistMetadata` for one lock, and the build environments it resolved."""

    def __init__(
        self,
        spec: PythonSpec,
        fetcher: Fetcher,
        session: requests.Session,
        cache: Cache,
        *,
        offline: bool = False,
        python: str = sys.executable,
    ) -> None:
        self.spec = spec
        self.fetcher = fetcher
        self.session = session
        self.cache = cache
        self.offline = offline
        self.python = python
        self._prepared: dict[str, Prepared] = {}
        self._envs: dict[tuple[str, object], BuildEnv] = {}
        self._lock = threading.RLock()
        self.timings: dict[str, float] = {}

    # -- the SdistMetadata protocol --------------------------------------------------------
    def metadata(self, file: DistFile, target: PythonTarget) -> bytes:
        with self._lock:
            prepared = self._prepare(file, target)
            self.build_env(file, target)
            return prepared.metadata

    # -- what the lock records -------------------------------------------------------------
    def build_env(self, file: DistFile, target: PythonTarget) -> BuildEnv:
        """How ``file`` is built for ``target``: its backend and pinned build wheels."""
        with self._lock:
            key = (_sha(file), target.selection_key)
            found = self._envs.get(key)
            if found is not None:
                return found
            prepared = self._prepare(file, target)
            wheels = self._resolve(prepared.requires, target, file)
            where = BuildWhere.IMAGE if prepared.compiles else BuildWhere.FETCH
            why = (
                f"{prepared.compiles}: built for the target in the Dockerfile's build stage"
                if prepared.compiles
                else f"{prepared.note or 'pure Python'}: `reprolock fetch` builds the wheel"
            )
            env = BuildEnv(
                backend=prepared.backend,
                backend_path=prepared.backend_path,
                requires=prepared.requires,
                wheels=tuple(w for w, _ in wheels),
                where=where,
                why=why,
            )
            self._envs[key] = env
            return env

    # -- preparing -------------------------------------------------------------------------
    def _prepare(self, file: DistFile, target: PythonTarget) -> Prepared:
        sha = _sha(file)
        found = self._prepared.get(sha)
        if found is None:
            found = self._cached(sha)
        if found is None:
            found = self._build_metadata(file, target)
            self.cache.put_ref("sdist-prepared", f"{_FORMAT}\n{sha}", _dump(found))
        self._prepared[sha] = found
        return found

    def _cached(self, sha: str) -> Prepared | None:
        data = self.cache.get_ref(
            "sdist-prepared", f"{_FORMAT}\n{sha}", cap=limits.current().metadata_bytes * 2
        )
        if data is None:
            return None
        try:
            return _load(data)
        except (ValueError, KeyError, TypeError):
            return None  # damaged: prepare again

    def _build_metadata(self, file: DistFile, target: PythonTarget) -> Prepared:
        from reprolock.pep517.hooks import Backend, BuildFailed  # noqa: PLC0415
        from reprolock.pep517.unpack import unpack  # noqa: PLC0415
        from reprolock.resolve.python.sdist import read_sdist  # noqa: PLC0415

        data = self.download(file.url, _sha(file), file.size, file.filename, "sdist_bytes")
        facts = read_sdist(data, file.filename)
        system = facts.build_system
        requires = tuple(system.requires)
        with tempfile.TemporaryDirectory(prefix="reprolock-sdist-") as scratch:
            root = Path(scratch)
            source = unpack(data, file.filename, root / "src")
            home = root / "home"
            home.mkdir()
            venv = self._venv(requires, target, file, root / "env")
            backend = Backend(source, system.backend, system.backend_path, venv, home)
            try:
                extra = backend.requires_for_wheel()
                more = tuple(r for r in extra if r not in requires)
                if more:
                    requires += more
                    venv = self._venv(requires, target, file, root / "env2")
                    backend = Backend(source, system.backend, system.backend_path, venv, home)
                metadata = self._index_metadata(file)
                compiles, note = facts.compiles, None
                if compiles is not None and not compiles.startswith("its build backend"):
                    # Only its sources suggest it compiles: the wheel it builds here tells
                    # (basicsr's setup.py names ext_modules, built only when asked to).
                    probe = _probe(backend, root / "probe")
                    if probe is not None and _pure(probe.name):
                        compiles, note = None, f"{compiles}, yet it builds {probe.name}"
                    elif probe is not None:
                        compiles = f"{compiles}; it builds {probe.name}"
                    if probe is not None and metadata is None:
                        metadata = _wheel_metadata(probe, file.filename)
                if metadata is None:
                    out = root / "metadata"
                    out.mkdir()
                    info = backend.prepare_metadata(out)
                    metadata = _read_small(info / "METADATA", file.filename)
            except BuildFailed as exc:
                raise build_error(file.filename, exc, what="preparing its metadata") from None
        return Prepared(
            metadata=metadata,
            backend=system.backend,
            backend_path=system.backend_path,
            requires=requires,
            compiles=compiles,
            note=note,
        )

    def _index_metadata(self, file: DistFile) -> bytes | None:
        """PEP 658 metadata of the sdist when the index advertises it."""
        if not file.metadata:
            return None
        with contextlib.suppress(SourceError):
            return self.fetcher.index.metadata(file)
        return None

    def _venv(
        self, requires: Sequence[str], target: PythonTarget, file: DistFile, folder: Path
    ) -> Path:
        wheels = self._resolve(requires, target, file)
        folder.mkdir()
        paths = []
        for wheel, _dist in wheels:
            assert wheel.sha256 is not None
            data = self.download(wheel.url, wheel.sha256, wheel.size, wheel.filename, "wheel_bytes")
            path = folder.parent / f"wheels-{folder.name}" / wheel.filename
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(data)
            paths.append(path)
        from reprolock.pep517.env import make_venv  # noqa: PLC0415

        return make_venv(self.python, folder / "venv", paths)

    def _resolve(
        self, requires: Sequence[str], target: PythonTarget, file: DistFile
    ) -> list[tuple[Wheel, DistFile]]:
        """The build requirements pinned for ``target``: wheels only, hashed."""
        build_spec = dataclasses.replace(
            self.spec,
            requirements=tuple(Requirement(r) for r in requires),
            requirements_files=(),
            sdists=SdistPolicy.REFUSE,
            no_build=(),
            only_build=(),
        )
        try:
            resolution = resolve_python(build_spec, target, self.fetcher)
        except ReprolockError as exc:
            raise type(exc)(
                f"the build requirements of {file.filename} ({', '.join(requires)}) cannot be "
                f"locked for {target}: {exc.message}",
                hint=exc.hint,
                problems=exc.problems,
            ) from None
        out = []
        for pin in resolution.pins.values():
            dist = pin.release.wheel
            if not dist.sha256:
                raise SourceError(
                    f"the build requirement {dist.filename} of {file.filename} has no sha256 "
                    "on its index.",
                    hint="Build environments are locked with hashes: use an index that "
                    "publishes them.",
                )
            out.append(
                (
                    Wheel(
                        filename=dist.filename,
                        url=strip_credentials(dist.url),
                        sha256=dist.sha256,
                        size=dist.size,
                    ),
                    dist,
                )
            )
        return out

    def download(self, url: str, sha256: str, size: int | None, name: str, limit: str) -> bytes:
        """The file at ``url``, checked against ``sha256`` (kept in the cache by it)."""
        cap = getattr(limits.current(), limit)
        cached = self.cache.get_blob(sha256, cap=cap)
        if cached is not None and hashlib.sha256(cached).hexdigest() == sha256:
            return cached
        if self.offline:
            raise SourceError(
                f"{name} is not in the cache, and --offline forbids fetching it.",
                hint="Run once without --offline to fill the cache.",
            )
        reply = http.get(
            self.session,
            url,
            what=name,
            cap=size if size is not None and size <= cap else cap,
            limit_name=limit if size is None else "the size its index lists",
        )
        if reply.status != 200:
            raise SourceError(
                f"{redact(url)}: HTTP {reply.status} for {name}.",
                hint="Check the index; retry later if the server is busy.",
            )
        if hashlib.sha256(reply.body).hexdigest() != sha256:
            raise SourceError(
                f"{name} does not match its sha256 from the index ({redact(url)}).",
                hint="The index may be serving tampered files; report it.",
            )
        self.cache.put_blob(reply.body)
        return reply.body


def _sha(file: DistFile) -> str:
    if not file.sha256:  # selection only offers hashed sdists
        raise SourceError(f"{file.filename} has no sha256 on its index; it cannot be built.")
    return file.sha256


def _probe(backend: Backend, folder: Path) -> Path | None:
    """The wheel ``backend`` builds on this host, or None when it cannot (no compiler
    here, say: the target's build stage has its own)."""
    from reprolock.pep517.hooks import BuildFailed  # noqa: PLC0415

    folder.mkdir()
    try:
        return backend.build_wheel(folder)
    except BuildFailed:
        return None


def _pure(wheel_name: str) -> bool:
    try:
        tags = parse_wheel_filename(wheel_name)[3]
    except InvalidWheelFilename:
        return False
    return all(t.abi == "none" and t.platform == "any" for t in tags)


def _wheel_metadata(wheel: Path, filename: str) -> bytes:
    """The METADATA of a wheel built here (bounded)."""
    cap = limits.current().metadata_bytes
    try:
        with zipfile.ZipFile(wheel) as archive:
            for info in archive.infolist():
                parts = info.filename.split("/")
                if len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "METADATA":
                    if info.file_size > cap:
                        raise limits.exceeded(
                            f"the METADATA built for {filename}", "metadata_bytes"
                        )
                    return archive.read(info)
    except (zipfile.BadZipFile, OSError) as exc:
        raise SourceError(f"the wheel built from {filename} is unreadable ({exc}).") from None
    raise SourceError(f"the wheel built from {filename} has no METADATA.")


def _read_small(path: Path, filename: str) -> bytes:
    cap = limits.current().metadata_bytes
    try:
        with path.open("rb") as handle:
            data = handle.read(cap + 1)
    except OSError as exc:
        raise SourceError(
            f"the build backend of {filename} wrote no readable METADATA ({exc.strerror}).",
            hint="Pin a version that has a wheel, or list the package in [python] no-build.",
        ) from None
    if len(data) > cap:
        raise limits.exceeded(f"the METADATA built for {filename}", "metadata_bytes")
    return data


def build_error(filename: str, exc: BuildFailed, *, what: str) -> SourceError:
    """The one-paragraph error of a failed build: the package, the step, the backend's
    last lines, and the ways out."""
    name = filename.removesuffix(".tar.gz").removesuffix(".zip").rpartition("-")[0]
    output = f" Its last output:\n{_indent(exc.output)}\n" if exc.output else " "
    return SourceError(
        f"building {filename} failed while {what}: {exc.what}.{output}".rstrip(),
        hint=f'Pin a version of {name} that has a wheel for the target, or add "{name}" to '
        "[python] no-build to refuse building it (the lock then says why no version fits).",
    )


def _indent(text: str) -> str:
    return "\n".join(f"    | {line}" for line in text.splitlines())


def _dump(prepared: Prepared) -> bytes:
    return json.dumps(
        {
            "metadata": prepared.metadata.decode("utf-8", "surrogateescape"),
            "backend": prepared.backend,
            "backend-path": list(prepared.backend_path),
            "requires": list(prepared.requires),
            "compiles": prepared.compiles,
            "note": prepared.note,
        },
        sort_keys=True,
    ).encode("utf-8", "surrogateescape")


def _load(data: bytes) -> Prepared:
    found = json.loads(data.decode("utf-8", "surrogateescape"))
    if not isinstance(found, dict):
        raise TypeError("not a table")
    compiles = found["compiles"]
    return Prepared(
        metadata=str(found["metadata"]).encode("utf-8", "surrogateescape"),
        backend=str(found["backend"]),
        backend_path=tuple(str(p) for p in found["backend-path"]),
        requires=tuple(str(r) for r in found["requires"]),
        compiles=None if compiles is None else str(compiles),
        note=None if found.get("note") is None else str(found["note"]),
    )
