"""Is a lock still the lock of this spec?  The inputs-hash decides; sections say why."""

from __future__ import annotations

from dataclasses import dataclass

from reprolock import __version__
from reprolock.lock.model import (
    LOCK_VERSION,
    PLAIN_VERSION,
    LockedHealthcheck,
    LockedImage,
    LockedTarget,
    Lockfile,
)
from reprolock.spec import Spec, content_hash, normalized_sections

_SECTION_HINTS = {
    "environment": "the target Python, platforms or name changed",
    "gpu": "the target GPUs, driver floor, CUDA/cuDNN wishes or compat policy changed",
    "base": "the base image choice changed",
    "python": "Python requirements, requirements files, indexes or resolution options changed",
    "apt": "apt packages, snapshot or mirror changed",
    "image": "image settings (user, workdir, env, copy, command, ports, healthcheck) changed",
    "registry": "registry mirrors or insecure registries changed",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Inputs:
    """What a lock is computed from: the normalized spec and the matrices version."""

    inputs_hash: str
    sections: tuple[tuple[str, str], ...]
    matrices_version: str


def inputs_of(spec: Spec, matrices_version: str) -> Inputs:
    sections = normalized_sections(spec)
    hashes = tuple(sorted((name, content_hash(value)) for name, value in sections.items()))
    overall = content_hash({"spec": sections, "matrices-version": matrices_version})
    return Inputs(inputs_hash=overall, sections=hashes, matrices_version=matrices_version)


def new_lockfile(
    inputs: Inputs, targets: tuple[LockedTarget, ...], image: LockedImage | None = None
) -> Lockfile:
    """A lock for ``targets`` stamped with ``inputs``."""
    newer = any(t.downgrades for t in targets) or any(
        p.sdist is not None for t in targets for p in t.packages
    )
    return Lockfile(
        lock_version=LOCK_VERSION if newer else PLAIN_VERSION,
        created_by=f"reprolock {__version__}",
        inputs_hash=inputs.inputs_hash,
        matrices_version=inputs.matrices_version,
        inputs=inputs.sections,
        image=image,
        targets=targets,
    )


def locked_image(spec: Spec) -> LockedImage:
    """The spec's image settings (and venv), as the lock carries them."""
    image = spec.image
    health = image.healthcheck
    return LockedImage(
        workdir=image.workdir,
        user=image.user,
        venv=spec.python.venv if spec.python else None,
        copy=image.copy,
        env=image.env,
        labels=image.labels,
        cmd=image.cmd,
        entrypoint=image.entrypoint,
        expose=image.expose,
        healthcheck=None
        if health is None
        else LockedHealthcheck(
            cmd=health.cmd,
            interval=health.interval,
            timeout=health.timeout,
            start_period=health.start_period,
            retries=health.retries,
        ),
        allow_data=image.allow_data,
    )


def stale_reasons(lock: Lockfile, inputs: Inputs) -> list[str]:
    """Why ``lock`` is not the lock of ``inputs``; empty when it is fresh."""
    if lock.inputs_hash == inputs.inputs_hash:
        return []
    reasons: list[str] = []
    recorded = dict(lock.inputs)
    for name, digest in inputs.sections:
        if name in recorded and recorded[name] != digest:
            reasons.append(f"[{name}] changed since the lock was written: {_SECTION_HINTS[name]}.")
    if lock.matrices_version != inputs.matrices_version:
        reasons.append(
            f"the compatibility matrices changed ({lock.matrices_version} → "
            f"{inputs.matrices_version}): reprolock's CUDA/driver/GPU knowledge was updated."
        )
    if not reasons:
        reasons.append("the spec's inputs-hash differs from the lock's.")
    return reasons
