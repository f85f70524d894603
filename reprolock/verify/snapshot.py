"""One comparable view of an environment, from a locked target or from an image inventory."""

from __future__ import annotations

from dataclasses import dataclass, field

from reprolock.inventory import Inventory
from reprolock.lock import LockedTarget

BASE_DIGEST_LABEL = "org.opencontainers.image.base.digest"


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """What `diff` compares: each section maps a subject to its version (and a build id)."""

    label: str
    base: tuple[str, ...] | None = None  # the base image's layer diff_ids, in order
    # The base image's manifest digest: the lock's, or an image's base-digest label (an
    # image's own layers then need not be compared: rebuilt layers differ byte-wise).
    base_digest: str | None = None
    python: dict[str, tuple[str, str | None]] = field(
        default_factory=dict
    )  # name → (version, build)
    apt: dict[str, str] = field(default_factory=dict)  # "name:arch" → version
    cuda: dict[str, str] = field(default_factory=dict)  # component → version


def from_target(target: LockedTarget, label: str) -> Snapshot:
    python = {
        p.name: (p.version, ",".join(sorted(w.sha256 or "" for w in p.wheels)) or None)
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


def from_inventory(
    inventory: Inventory, diff_ids: tuple[str, ...], label: str, venv: str | None = None
) -> Snapshot:
    """``venv`` limits Python to that environment (the lock's); else every environment."""
    python: dict[str, tuple[str, str | None]] = {}
    for env in inventory.python_envs:
        if venv is not None and not env.path.startswith(venv.rstrip("/") + "/"):
            continue
        for dist in env.dists:
            python.setdefault(dist.name, (dist.version, None))
    apt = {f"{d.name}:{d.architecture}": d.version for d in inventory.deb_packages}
    cuda: dict[str, str] = {}
    for source in _CUDA_SOURCES:
        for component in inventory.cuda:
            if component.source == source:
                cuda.setdefault(component.name, component.version)
    digest = dict(inventory.labels).get(BASE_DIGEST_LABEL)
    return Snapshot(
        label=label, base=diff_ids, base_digest=digest, python=python, apt=apt, cuda=cuda
    )
