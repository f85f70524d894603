"""One comparable view of an environment, from a locked target or from an image inventory.

An image's snapshot holds what `verify` looks at: every Python environment (each its own
namespace: a venv, the system site, ``/usr/local`` dist-packages, a user site, Debian's
packages), dpkg packages, the CUDA stack, and the files that differ from their package's
record (RECORD, dpkg's md5sums, bytecode matching no source), with the layer that changed
them.
"""

from __future__ import annotations

import dataclasses
import posixpath
from dataclasses import dataclass, field

from reprolock.inventory import Inventory, PythonEnv
from reprolock.lock import LockedTarget

BASE_DIGEST_LABEL = "org.opencontainers.image.base.digest"

Key = tuple[str, str]  # (environment, name)


@dataclass(frozen=True, slots=True, kw_only=True)
class FileState:
    """A file unlike its package's record."""

    problem: str  # "modified", "missing", "pyc-stale", "pyc-orphan", "conffile"
    where: str  # "layer 3 /opt/venv/lib/python3.11/site-packages/requests/adapters.py"
    package: str  # "python requests (/opt/venv (venv))" or "apt libc6"

    def __str__(self) -> str:
        return f"{self.problem}, {self.where}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """What `diff` compares: each section maps a subject to its state."""

    label: str
    base: tuple[str, ...] | None = None  # the base image's layer diff_ids, in order
    # The base image's manifest digest: the lock's, or an image's base-digest label (an
    # image's own layers then need not be compared: rebuilt layers differ byte-wise).
    base_digest: str | None = None
    # (environment, name) → (version, build); the environment as `env_label` names it
    python: dict[Key, tuple[str, str | None]] = field(default_factory=dict)
    apt: dict[str, str] = field(default_factory=dict)  # "name:arch" → version
    cuda: dict[str, str] = field(default_factory=dict)  # component → version
    files: dict[str, FileState] = field(default_factory=dict)  # "pkg:path" → its state


def env_label(env: PythonEnv) -> str:
    """How a Python environment is named in a diff: a venv by its folder, others by their
    site folder, each with its kind."""
    if env.kind == "venv":
        parts = env.path.split("/")
        root = "/".join(parts[: parts.index("lib")]) if "lib" in parts else env.path
        return venv_label(root)
    kinds = {"user": "user site", "system": "system site", "debian": "Debian's packages"}
    return f"{env.path} ({kinds.get(env.kind, env.kind)})"


def venv_label(venv: str) -> str:
    return f"{venv.rstrip('/') or '/'} (venv)"


def from_target(target: LockedTarget, label: str, venv: str | None) -> Snapshot:
    """The lock's target; its Python packages are in ``venv`` (the lock's ``[image]``)."""
    env = venv_label(venv) if venv else "(the lock's environment)"
    python = {
        (env, p.name): (p.version, ",".join(sorted(w.sha256 or "" for w in p.wheels)) or None)
        for p in target.packages
    }
    apt = {f"{p.name}:{p.architecture}": p.version for p in target.apt}
    cuda: dict[str, str] = {}
    if target.cuda is not None:
        cuda["cuda"] = target.cuda.toolkit
        if target.cuda.cudnn:
            cuda["cudnn"] = target.cuda.cudnn
        if target.cuda.nccl:
            cuda["nccl"] = target.cuda.nccl
        cuda["driver-floor"] = target.cuda.driver_min
    base = target.base.diff_ids if target.base is not None else None
    digest = target.base.manifest_digest if target.base is not None else None
    return Snapshot(label=label, base=base, base_digest=digest, python=python, apt=apt, cuda=cuda)


# The most telling source for each CUDA component, first found wins.
_CUDA_SOURCES = ("version.json", "version.txt", "header", "wheel", "dpkg", "env")


def from_inventory(inventory: Inventory, diff_ids: tuple[str, ...], label: str) -> Snapshot:
    """Every environment, package and changed file of an image."""
    python: dict[Key, tuple[str, str | None]] = {
        (env_label(env), dist.name): (dist.version, None)
        for env in inventory.python_envs
        for dist in env.dists
    }
    apt = {f"{d.name}:{d.architecture}": d.version for d in inventory.deb_packages}
    cuda: dict[str, str] = {}
    for source in _CUDA_SOURCES:
        for component in inventory.cuda:
            if component.source == source:
                cuda.setdefault(component.name, component.version)
    digest = dict(inventory.labels).get(BASE_DIGEST_LABEL)
    return Snapshot(
        label=label,
        base=diff_ids,
        base_digest=digest,
        python=python,
        apt=apt,
        cuda=cuda,
        files=_files(inventory),
    )


def _files(inventory: Inventory) -> dict[str, FileState]:
    out: dict[str, FileState] = {}
    for env in inventory.python_envs:
        for dist in env.dists:
            owner = f"python {dist.name} ({env_label(env)})"
            for issue in dist.record_issues:
                if issue.problem == "malformed":
                    continue
                path = posixpath.normpath(posixpath.join(env.path, issue.path))
                layer = dist.layer if issue.layer is None else issue.layer
                out[f"{dist.name}:{path}"] = FileState(
                    problem=issue.problem, where=f"layer {layer} {path}", package=owner
                )
    integrity = inventory.dpkg_integrity
    for dpkg_issue in integrity.issues if integrity else ():
        problem = "conffile" if dpkg_issue.conffile else dpkg_issue.problem
        where = (
            f"layer {dpkg_issue.layer} {dpkg_issue.path}" if dpkg_issue.layer is not None else ""
        )
        out[f"{dpkg_issue.package}:{dpkg_issue.path}"] = FileState(
            problem=problem, where=where or dpkg_issue.path, package=f"apt {dpkg_issue.package}"
        )
    return out


def with_base(lock: Snapshot, base: Snapshot, venv: str | None) -> Snapshot:
    """The lock's snapshot with what its base image holds (read from the image's first
    layers): a lock pins its base by digest, so the base's packages are the lock's too.
    The base's Python packages in the lock's venv, if any, yield to the lock's."""
    python = dict(base.python)
    if venv:
        python = {k: v for k, v in python.items() if k[0] != venv_label(venv)}
    python.update(lock.python)
    return dataclasses.replace(
        lock,
        python=python,
        apt={**base.apt, **lock.apt},
        files={**base.files, **lock.files},
    )
