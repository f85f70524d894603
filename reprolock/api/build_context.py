"""``reprolock dockerfile`` and ``reprolock fetch``: the build context, from the lock only.

``dockerfile`` writes, beside the lock (or in ``--output``), per target ``Dockerfile`` (or
``Dockerfile.<target>`` when the lock has several), ``.dockerignore`` and
``.reprolock/<target>/requirements.txt`` (+ ``debs/SHA256SUMS``). ``fetch`` downloads every
locked wheel and ``.deb`` of a target into ``.reprolock/<target>/wheels`` and ``debs``,
checking each file's sha256 against the lock (air-gapped builds need nothing else).
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests

from reprolock.api.export import locate_lock, pick_target
from reprolock.api.network import NetOptions
from reprolock.api.project import read_lock
from reprolock.atomic import replace_file
from reprolock.emit.dockerfile import (
    DockerfileOptions,
    deb_filename,
    debs_sha256sums,
    dockerfile_name,
    dockerignore,
    folder,
    render,
    requirements,
)
from reprolock.errors import InputError, SourceError
from reprolock.lock import LockedTarget, Lockfile
from reprolock.net.session import describe_failure, new_session, redact


@dataclass(frozen=True, slots=True, kw_only=True)
class Written:
    path: Path
    changed: bool


def _targets(lock: Lockfile, lock_path: Path, target_id: str | None) -> list[LockedTarget]:
    if target_id is None:
        return list(lock.targets)
    return [pick_target(lock, lock_path, target_id)]


def _write(path: Path, text: str) -> Written:
    data = text.encode()
    try:
        changed = path.read_bytes() != data
    except OSError:
        changed = True
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_file(path, data, durable=True)
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
) -> list[Written]:
    """Write the Dockerfile(s) and their build-context files; unchanged files are left as
    they are (byte-identical output for the same lock)."""
    path = locate_lock(spec_path, lock_path, cwd)
    lock, _warnings = read_lock(path)
    digest = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    out_dir = output or path.parent
    options = DockerfileOptions(
        lock_digest=digest, wheelhouse=wheelhouse, single_stage=single_stage
    )
    written = []
    for target in _targets(lock, path, target_id):
        name = dockerfile_name(lock, target)
        if single_stage:
            name += ".single-stage"
        written.append(_write(out_dir / name, render(lock, target, options)))
        here = out_dir / folder(target)
        written.append(
            _write(here / "requirements.txt", requirements(target, wheelhouse=wheelhouse))
        )
        if target.apt:
            written.append(_write(here / "debs" / "SHA256SUMS", debs_sha256sums(target)))
    written.append(_write(out_dir / ".dockerignore", dockerignore(lock.image)))
    return written


@dataclass(slots=True)
class FetchResult:
    downloaded: int = 0
    reused: int = 0
    bytes: int = 0
    folders: list[Path] = field(default_factory=list)


def fetch(
    spec_path: Path | None,
    lock_path: Path | None,
    *,
    cwd: Path,
    target_id: str | None,
    output: Path | None,
    net: NetOptions,
) -> FetchResult:
    """Download every locked wheel and .deb, each checked against its sha256."""
    path = locate_lock(spec_path, lock_path, cwd)
    lock, _warnings = read_lock(path)
    out_dir = output or path.parent
    jobs: list[tuple[str, str, Path]] = []  # (url, sha256, destination)
    result = FetchResult()
    for target in _targets(lock, path, target_id):
        here = out_dir / folder(target)
        result.folders.append(here)
        for package in target.packages:
            for wheel in package.wheels:
                if not wheel.sha256:
                    raise InputError(
                        f"{package.name} {package.version}: the lock has no sha256 for "
                        f"{wheel.filename}; fetch installs nothing unchecked.",
                        hint="Lock it from an index that publishes hashes.",
                    )
                jobs.append((wheel.url, wheel.sha256, here / "wheels" / wheel.filename))
        for deb in target.apt:
            jobs.append((deb.url, deb.sha256, here / "debs" / deb_filename(deb)))
        if target.apt:
            _write(here / "debs" / "SHA256SUMS", debs_sha256sums(target))
    if net.config.offline and any(not _matches(d, s) for _, s, d in jobs):
        raise SourceError(
            "--offline: some locked files are not in the build context yet.",
            hint="Run `reprolock fetch` once online.",
        )
    session = new_session(net.config)
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            for size in pool.map(lambda job: _fetch_one(session, *job), jobs):
                if size is None:
                    result.reused += 1
                else:
                    result.downloaded += 1
                    result.bytes += size
    finally:
        session.close()
    return result


def _matches(path: Path, sha256: str) -> bool:
    try:
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest() == sha256
    except OSError:
        return False


def _fetch_one(session: requests.Session, url: str, sha256: str, dest: Path) -> int | None:
    """Download ``url`` to ``dest`` unless it is there already; None when reused."""
    if _matches(dest, sha256):
        return None
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    try:
        with session.get(url, stream=True) as response:
            if response.status_code != 200:
                raise SourceError(
                    f"{redact(url)}: HTTP {response.status_code}.",
                    hint="The locked file is gone from its index or archive; relock "
                    "(or fetch from a snapshot/mirror that keeps it).",
                )
            with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False) as tmp:
                for chunk in response.iter_content(1 << 16):
                    digest.update(chunk)
                    size += len(chunk)
                    tmp.write(chunk)
    except requests.RequestException as exc:
        raise SourceError(f"{redact(url)}: {describe_failure(exc)}.") from None
    partial = Path(tmp.name)
    if digest.hexdigest() != sha256:
        partial.unlink(missing_ok=True)
        raise SourceError(
            f"{redact(url)}: its sha256 is {digest.hexdigest()}, the lock says {sha256}.",
            hint="The file was replaced on the server: do not use it. Relock deliberately "
            "if the change is expected.",
        )
    partial.replace(dest)
    return size


def written_summary(written: Iterable[Written]) -> tuple[int, int]:
    items = list(written)
    return sum(1 for w in items if w.changed), len(items)
