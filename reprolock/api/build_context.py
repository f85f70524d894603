"""``reprolock dockerfile`` and ``reprolock fetch``: the build context, from the lock only.

``dockerfile`` writes, beside the lock (or in ``--output``), per target ``Dockerfile`` (or
``Dockerfile.<target>`` when the lock has several), ``.dockerignore`` and
``.reprolock/<target>/requirements.txt`` (+ ``debs/SHA256SUMS``, ``python/SHA256SUMS``).
``fetch`` downloads every locked wheel and ``.deb`` of a target into
``.reprolock/<target>/wheels`` and ``debs``, and a standalone interpreter's tarball into
``python/``, checking each file's sha256 against the lock (air-gapped builds need nothing
else).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import tempfile
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import requests

from reprolock import limits
from reprolock.api.built_wheels import build_fetched, read_built
from reprolock.api.export import locate_lock, pick_target
from reprolock.api.network import NetOptions
from reprolock.api.progress import Observer, Silent
from reprolock.api.project import lock_digest, use_lock
from reprolock.atomic import replace_file
from reprolock.emit.dockerfile import (
    CONTEXT,
    DockerfileOptions,
    build_requirements,
    build_requirements_name,
    deb_filename,
    debs_sha256sums,
    dockerfile_name,
    dockerignore,
    image_built,
    render,
    requirements,
    sdists_sha256sums,
    standalone_filename,
    standalone_sha256sums,
)
from reprolock.emit.dockerfile import target_id as checked_id
from reprolock.errors import InputError, SourceError
from reprolock.lock import LockedTarget, Lockfile
from reprolock.lock.io import directory_lock
from reprolock.model import grammar
from reprolock.model.paths import UnsafePath, join_under
from reprolock.net import http
from reprolock.net.session import new_session, redact

PARTIAL = ".reprolock-partial-"  # the prefix of a download in progress


@dataclass(frozen=True, slots=True, kw_only=True)
class Written:
    path: Path
    changed: bool


def _targets(lock: Lockfile, lock_path: Path, target_id: str | None) -> list[LockedTarget]:
    if target_id is None:
        return list(lock.targets)
    return [pick_target(lock, lock_path, target_id)]


def _under(root: Path, *names: str) -> Path:
    """``root/names…``: every path built from the lock goes through here, and stays in
    ``root`` (`reprolock.model.paths.join_under`)."""
    try:
        return join_under(root, *names)
    except UnsafePath as exc:
        raise InputError(
            f"refusing to write {exc}: lock values may only name files inside the build "
            f"context {root}.",
            hint="Regenerate the lock with `reprolock lock`; remove symbolic links in the build "
            "context that point outside it.",
        ) from None


def _target_dir(root: Path, target: LockedTarget) -> Path:
    return _under(root, CONTEXT, checked_id(target))


def _write(path: Path, text: str) -> Written:
    data = text.encode()
    try:
        changed = path.read_bytes() != data
    except OSError:
        changed = True
    if changed:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            replace_file(path, data, durable=True)
        except OSError as exc:
            raise SourceError(
                f"cannot write {path}: {exc.strerror or exc}.",
                hint="Check that the folder is writable and the disk not full.",
            ) from None
    return Written(path=path, changed=changed)


def write_dockerfiles(
    spec_path: Path | None,
    lock_path: Path | None,
    *,
    cwd: Path,
    target_id: str | None,
    output: Path | None,
    wheelhouse: bool,
    single_stage: bool,
    warnings: list[str] | None = None,
    locked: bool = False,
) -> list[Written]:
    """Write the Dockerfile(s) and their build-context files; unchanged files are left as
    they are (byte-identical output for the same lock).  Warnings about the lock (a stale
    one: `freshness`; with ``locked`` that is an error) are appended to ``warnings``."""
    path = locate_lock(spec_path, lock_path, cwd)
    lock, _ = use_lock(path, spec_path, cwd=cwd, locked=locked, warnings=warnings)
    digest = lock_digest(path)
    out_dir = output or path.parent
    options = DockerfileOptions(
        lock_digest=digest, wheelhouse=wheelhouse, single_stage=single_stage
    )
    # Render everything before writing anything: a bad value leaves no half-written context.
    files: list[tuple[Path, str]] = []
    for target in _targets(lock, path, target_id):
        name = dockerfile_name(lock, target)
        if single_stage:
            name += ".single-stage"
        files.append((_under(out_dir, name), render(lock, target, options)))
        here = _target_dir(out_dir, target)
        text = requirements(target, wheelhouse=wheelhouse, built=read_built(here))
        files.append((_under(here, "requirements.txt"), text))
        if target.apt:
            files.append((_under(here, "debs", "SHA256SUMS"), debs_sha256sums(target)))
        for package in image_built(target):  # built in the Dockerfile's build stage
            name = build_requirements_name(package)
            files.append((_under(here, name), build_requirements(package)))
        if image_built(target):
            files.append((_under(here, "sdists", "SHA256SUMS"), sdists_sha256sums(target)))
        if standalone_filename(target) is not None:
            files.append((_under(here, "python", "SHA256SUMS"), standalone_sha256sums(target)))
    files.append((_under(out_dir, ".dockerignore"), dockerignore(lock, wheelhouse=wheelhouse)))
    return [_write(p, text) for p, text in files]


@dataclass(slots=True)
class FetchResult:
    downloaded: int = 0
    reused: int = 0
    bytes: int = 0
    built: int = 0  # wheels built from locked sdists
    folders: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Job:
    url: str
    sha256: str
    size: int | None
    dest: Path


class _Counts:
    """How far a fetch has come, for a progress line: files done of all, bytes downloaded
    of those to download (a file found already there leaves the total)."""

    def __init__(self, jobs: list[_Job]) -> None:
        self._lock = threading.Lock()
        self.files = 0
        self.files_total = len(jobs)
        self.bytes = 0
        sizes = [j.size for j in jobs]
        self.bytes_total = sum(s for s in sizes if s) if all(sizes) else 0

    def add(self, size: int) -> None:
        with self._lock:
            self.bytes += size

    def done(self, *, reused_size: int | None = None) -> None:
        with self._lock:
            self.files += 1
            if reused_size is not None and self.bytes_total:
                self.bytes_total -= reused_size

    def stats(self) -> dict[str, int]:
        with self._lock:
            out = {"files": self.files, "files-total": self.files_total, "bytes": self.bytes}
            if self.bytes_total:
                out["bytes-total"] = self.bytes_total
            return out


def fetch(
    spec_path: Path | None,
    lock_path: Path | None,
    *,
    cwd: Path,
    target_id: str | None,
    output: Path | None,
    net: NetOptions,
    observer: Observer | None = None,
    locked: bool = False,
    warnings: list[str] | None = None,
) -> FetchResult:
    """Download every locked wheel and .deb, each checked against its sha256 (and size);
    ``observer`` watches the files and bytes as they arrive. Warnings about the lock (a
    stale one: `freshness`; with ``locked`` that is an error) are appended to ``warnings``
    as soon as they are known, and kept in the result.

    Files go to a temporary ``.reprolock-partial-*`` file beside their destination and are
    renamed into place once checked; a failed or interrupted download leaves nothing, and
    leftovers of a killed fetch are removed by the next one.
    """
    path = locate_lock(spec_path, lock_path, cwd)
    lock, found = use_lock(path, spec_path, cwd=cwd, locked=locked, warnings=warnings)
    out_dir = output or path.parent
    jobs: list[_Job] = []
    result = FetchResult(warnings=found)
    sums: list[tuple[Path, str]] = []
    for target in _targets(lock, path, target_id):
        here = _target_dir(out_dir, target)
        result.folders.append(here)
        for package in target.packages:
            for wheel in package.wheels:
                if not wheel.sha256:
                    raise InputError(
                        f"{package.name} {package.version}: the lock has no sha256 for "
                        f"{wheel.filename}; fetch installs nothing unchecked.",
                        hint="Lock it from an index that publishes hashes.",
                    )
                name = _checked(wheel.filename, grammar.wheel_filename, package.name)
                jobs.append(
                    _Job(
                        url=_checked(wheel.url, grammar.http_url, name),
                        sha256=_checked(wheel.sha256, grammar.sha256_hex, name),
                        size=wheel.size,
                        dest=_under(here, "wheels", name),
                    )
                )
        jobs.extend(_build_jobs(target, here))
        for deb in target.apt:
            name = deb_filename(deb)
            jobs.append(
                _Job(
                    url=_checked(deb.url, grammar.http_url, name),
                    sha256=_checked(deb.sha256, grammar.sha256_hex, name),
                    size=deb.size,
                    dest=_under(here, "debs", name),
                )
            )
        if target.apt:
            sums.append((_under(here, "debs", "SHA256SUMS"), debs_sha256sums(target)))
        tarball = standalone_filename(target)
        if tarball is not None and target.interpreter is not None:
            interpreter = target.interpreter
            jobs.append(
                _Job(
                    url=_checked(interpreter.url or "", grammar.http_url, tarball),
                    sha256=_checked(interpreter.sha256 or "", grammar.sha256_hex, tarball),
                    size=interpreter.size,
                    dest=_under(here, "python", tarball),
                )
            )
            sums.append((_under(here, "python", "SHA256SUMS"), standalone_sha256sums(target)))
    context = _under(out_dir, CONTEXT)
    _make_folder(context)
    with _locked(context):
        for folder in {j.dest.parent for j in jobs}:
            _make_folder(folder)
            _sweep(folder)
        for sums_path, text in sums:
            _write(sums_path, text)
        if net.config.offline and any(not _matches(j.dest, j.sha256) for j in jobs):
            raise SourceError(
                "--offline: some locked files are not in the build context yet.",
                hint="Run `reprolock fetch` once online.",
            )
        counts = _Counts(jobs)
        with (observer or Silent()).watch(counts.stats):
            _download_all(jobs, net, result, counts)
        for target in _targets(lock, path, target_id):
            result.built += build_fetched(target, _target_dir(out_dir, target))
    return result


def _build_jobs(target: LockedTarget, here: Path) -> list[_Job]:
    """The sdists the lock builds and their build environments' wheels (each once)."""
    jobs: dict[Path, _Job] = {}
    for package in target.packages:
        if package.sdist is None or package.build is None:
            continue
        name = _checked(package.sdist.filename, grammar.sdist_filename, package.name)
        dest = _under(here, "sdists", name)
        jobs[dest] = _Job(
            url=_checked(package.sdist.url, grammar.http_url, name),
            sha256=_checked(package.sdist.sha256, grammar.sha256_hex, name),
            size=package.sdist.size,
            dest=dest,
        )
        for wheel in package.build.wheels:
            wheel_name = _checked(wheel.filename, grammar.wheel_filename, package.name)
            dest = _under(here, "build-wheels", wheel_name)
            jobs[dest] = _Job(
                url=_checked(wheel.url, grammar.http_url, wheel_name),
                sha256=_checked(wheel.sha256 or "", grammar.sha256_hex, wheel_name),
                size=wheel.size,
                dest=dest,
            )
    return [jobs[d] for d in sorted(jobs)]


def _checked(value: str, check: grammar.Grammar, what: str) -> str:
    try:
        return check(value)
    except ValueError as exc:
        raise InputError(
            f"{what}: {exc}.", hint="Regenerate the lock with `reprolock lock`."
        ) from None


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SourceError(
            f"cannot create {folder}: {exc.strerror or exc}.",
            hint="Check that the build context is writable, or give another one with -o.",
        ) from None


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One fetch at a time per build context: leftovers found under the lock are from a
    fetch that died."""
    try:
        with directory_lock(folder):
            yield
    except OSError as exc:
        raise SourceError(f"cannot lock {folder}: {exc.strerror or exc}.") from None


def _sweep(folder: Path) -> None:
    """Remove the partial downloads a killed fetch left in ``folder``."""
    with contextlib.suppress(OSError):
        for leftover in folder.iterdir():
            if leftover.name.startswith(PARTIAL):
                with contextlib.suppress(OSError):
                    leftover.unlink()


def _download_all(jobs: list[_Job], net: NetOptions, result: FetchResult, counts: _Counts) -> None:
    session = new_session(net.config)
    cancelled = threading.Event()
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            try:
                for size in pool.map(lambda job: _fetch_one(session, job, cancelled, counts), jobs):
                    if size is None:
                        result.reused += 1
                    else:
                        result.downloaded += 1
                        result.bytes += size
            except BaseException:
                cancelled.set()  # the other downloads stop and clean up too
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    finally:
        session.close()


def _matches(path: Path, sha256: str) -> bool:
    """Whether ``path`` is a regular file (not a link, FIFO or device) with this sha256."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        with os.fdopen(os.dup(fd), "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest() == sha256
    except OSError:
        return False
    finally:
        os.close(fd)


def _fetch_one(
    session: requests.Session, job: _Job, cancelled: threading.Event, counts: _Counts
) -> int | None:
    """Download ``job.url`` to ``job.dest`` unless it is there already; None when reused."""
    if _matches(job.dest, job.sha256):
        counts.done(reused_size=job.size)
        return None
    try:
        fd, name = tempfile.mkstemp(prefix=PARTIAL, dir=job.dest.parent)
    except OSError as exc:
        raise _write_error(job.dest, exc) from None
    partial = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            size = _download(session, job, out, cancelled, counts)
        partial.replace(job.dest)
    except OSError as exc:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise _write_error(job.dest, exc) from None
    except BaseException:  # any failure, a cancel, Ctrl-C: no partial file stays
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    counts.done()
    return size


def _download(
    session: requests.Session,
    job: _Job,
    out: BinaryIO,
    cancelled: threading.Event,
    counts: _Counts,
) -> int:
    """Stream ``job.url`` into ``out``, checking size (against the lock's, or the cap) and
    sha256; the byte count.  OSError from writing (a full disk) is the caller's."""
    url = redact(job.url)
    cap = job.size if job.size is not None else limits.current().download_bytes
    digest = hashlib.sha256()
    size = 0
    with http.stream(
        session,
        job.url,
        what=job.dest.name,
        cap=limits.current().download_bytes,
        limit_name="download_bytes",
    ) as response:
        if response.status != 200:
            raise SourceError(
                f"{url}: HTTP {response.status}.",
                hint="The locked file is gone from its index or archive; relock "
                "(or fetch from a snapshot/mirror that keeps it).",
            )
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and len(declared) < 20 and int(declared) > cap:
            raise _too_long(url, job, f"it declares {declared} bytes")
        for chunk in response.chunks():
            if cancelled.is_set():
                raise SourceError(f"{url}: download cancelled.")
            size += len(chunk)
            if size > cap:
                raise _too_long(url, job, f"more than {cap} bytes arrived")
            digest.update(chunk)
            out.write(chunk)
            counts.add(len(chunk))
    out.flush()
    os.fsync(out.fileno())
    if digest.hexdigest() != job.sha256:
        raise SourceError(
            f"{url}: its sha256 is {digest.hexdigest()}, the lock says {job.sha256}.",
            hint="The file was replaced on the server: do not use it. Relock deliberately "
            "if the change is expected.",
        )
    if job.size is not None and size != job.size:
        raise SourceError(
            f"{url}: {size} bytes arrived, the lock says {job.size}.",
            hint="The file was replaced on the server: do not use it.",
        )
    return size


def _too_long(url: str, job: _Job, detail: str) -> SourceError:
    if job.size is None:
        error = limits.exceeded(url, "download_bytes", actual=detail)
        return SourceError(error.message, hint=error.hint)
    return SourceError(
        f"{url}: longer than the {job.size} bytes the lock records ({detail}); refusing it.",
        hint="The file was replaced on the server: do not use it. Relock deliberately "
        "if the change is expected.",
    )


def _write_error(dest: Path, exc: OSError) -> SourceError:
    reason = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
    return SourceError(
        f"cannot write {dest}: {reason}.",
        hint="Free some space, or fetch into another build context with -o.",
    )


def written_summary(written: Iterable[Written]) -> tuple[int, int]:
    items = list(written)
    return sum(1 for w in items if w.changed), len(items)
