"""Drift between a built image and its locked target, as findings with a severity."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from packaging.version import InvalidVersion, Version

from reprolock.inventory import DebPackage, Inventory
from reprolock.lock import LockedImage, LockedTarget

Severity = Literal["error", "warning"]

LABEL_BASE_DIGEST = "org.opencontainers.image.base.digest"
LABEL_LOCK_DIGEST = "dev.reprolock.lock-digest"
LABEL_TARGET = "dev.reprolock.target"
LABEL_DRIVER = "dev.reprolock.driver-min"


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    kind: str  # e.g. "python-version", "apt-missing", "record-modified"
    subject: str
    expected: str | None
    actual: str | None
    severity: Severity
    where: str | None = None  # layer and path the actual value came from
    message: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    image: str
    target: str
    findings: tuple[Finding, ...] = field(default=())

    @property
    def failed(self) -> bool:
        return any(f.severity == "error" for f in self.findings)


def _public(version: str) -> str:
    try:
        return Version(version).public
    except InvalidVersion:
        return version


def verify(
    target: LockedTarget,
    image_settings: LockedImage | None,
    inventory: Inventory,
    *,
    image: str,
    diff_ids: Sequence[str],
    base_debs: Sequence[DebPackage],
    lock_digest: str | None,
    strict: bool = False,
    ignore: frozenset[str] = frozenset(),
) -> Report:
    """Every way the image differs from ``target``; unexpected packages are warnings
    unless ``strict``; packages named in ``ignore`` are skipped."""
    found: list[Finding] = []
    unexpected: Severity = "error" if strict else "warning"
    labels = dict(inventory.labels)

    def add(
        kind: str,
        subject: str,
        expected: str | None,
        actual: str | None,
        severity: Severity,
        message: str,
        where: str | None = None,
    ) -> None:
        if subject not in ignore:
            found.append(
                Finding(
                    kind=kind,
                    subject=subject,
                    expected=expected,
                    actual=actual,
                    severity=severity,
                    where=where,
                    message=message,
                )
            )

    # -- base ------------------------------------------------------------------------------
    base = target.base
    if base is not None:
        n = len(base.diff_ids)
        if tuple(diff_ids[:n]) != base.diff_ids:
            add(
                "base-layers",
                base.ref,
                ",".join(base.diff_ids),
                ",".join(diff_ids[:n]),
                "error",
                f"the image does not start with the layers of {base.ref} as locked",
            )
        label = labels.get(LABEL_BASE_DIGEST)
        if label is not None and label not in (base.manifest_digest, base.index_digest):
            add(
                "base-label",
                LABEL_BASE_DIGEST,
                base.manifest_digest,
                label,
                "error",
                "the base-digest label names another base image",
            )
    # -- labels and config ---------------------------------------------------------------------
    if (
        lock_digest is not None
        and LABEL_LOCK_DIGEST in labels
        and labels[LABEL_LOCK_DIGEST] != lock_digest
    ):
        add(
            "label-lock-digest",
            LABEL_LOCK_DIGEST,
            lock_digest,
            labels[LABEL_LOCK_DIGEST],
            "error",
            "the image was built from another lock",
        )
    if LABEL_TARGET in labels and labels[LABEL_TARGET] != target.id:
        add(
            "label-target",
            LABEL_TARGET,
            target.id,
            labels[LABEL_TARGET],
            "error",
            "the image was built for another target",
        )
    if image_settings is not None and inventory.user_name() != image_settings.user:
        add(
            "config-user",
            "user",
            image_settings.user,
            inventory.user or "root",
            "error",
            "the image runs as another user",
        )
    # -- apt --------------------------------------------------------------------------------------
    debs = {(d.name, d.architecture): d for d in inventory.deb_packages}
    locked_debs = {(p.name, p.architecture): p for p in target.apt}
    for key, deb in sorted(locked_debs.items()):
        have = debs.get(key)
        if have is None:
            add(
                "apt-missing",
                deb.name,
                deb.version,
                None,
                "error",
                "a locked apt deb is not installed",
            )
        elif have.version != deb.version:
            add(
                "apt-version",
                deb.name,
                deb.version,
                have.version,
                "error",
                "installed at another version",
                f"layer {have.layer} {have.path}",
            )
    base_keys = {(d.name, d.architecture) for d in base_debs}
    if target.base is not None:
        for key, have in sorted(debs.items()):
            if key not in locked_debs and key not in base_keys:
                add(
                    "apt-unexpected",
                    have.name,
                    None,
                    have.version,
                    unexpected,
                    "installed, but neither in the base image nor in the lock",
                    f"layer {have.layer} {have.path}",
                )
    # -- python ------------------------------------------------------------------------------------
    venv = image_settings.venv if image_settings else None
    envs = [
        e
        for e in inventory.python_envs
        if venv is None or e.path.startswith(venv.rstrip("/") + "/")
    ]
    installed = {d.name: d for e in envs for d in e.dists}
    locked = {p.name: p for p in target.packages}
    for name, package in sorted(locked.items()):
        dist = installed.get(name)
        if dist is None:
            add(
                "python-missing",
                name,
                package.version,
                None,
                "error",
                "a locked package is not installed",
            )
            continue
        where = f"layer {dist.layer} /{dist.metadata_path}"
        if dist.version != package.version:
            if _public(dist.version) == _public(package.version):
                add(
                    "python-rebuilt",
                    name,
                    package.version,
                    dist.version,
                    "error",
                    "another build of the same version",
                    where,
                )
            else:
                add(
                    "python-version",
                    name,
                    package.version,
                    dist.version,
                    "error",
                    "installed at another version",
                    where,
                )
        for issue in dist.record_issues:
            add(
                f"record-{issue.problem}",
                f"{name}:{issue.path}",
                issue.expected,
                issue.actual,
                "error",
                f"a file of {name} is {issue.problem} (RECORD)",
                where,
            )
    if target.packages:
        for name, dist in sorted(installed.items()):
            if name not in locked:
                add(
                    "python-unexpected",
                    name,
                    None,
                    dist.version,
                    unexpected,
                    "installed, but not in the lock",
                    f"layer {dist.layer} /{dist.metadata_path}",
                )
    for env in inventory.python_envs:
        if env.kind != "user":
            continue
        for dist in env.dists:
            if dist.name in locked:
                add(
                    "python-shadowed",
                    dist.name,
                    locked[dist.name].version,
                    dist.version,
                    "error",
                    f"a user site-packages copy in {env.path} can shadow the venv's",
                )
    # -- cuda --------------------------------------------------------------------------
    if target.cuda is not None:
        label_driver = labels.get(LABEL_DRIVER)
        if label_driver is not None and label_driver != target.cuda.driver_min:
            add(
                "label-driver",
                LABEL_DRIVER,
                target.cuda.driver_min,
                label_driver,
                "error",
                "the driver-floor label differs from the lock's",
            )
        seen = {c.name: c for c in reversed(inventory.cuda)}
        for name, wanted in (
            ("cuda", target.cuda.toolkit),
            ("cudnn", target.cuda.cudnn),
            ("nccl", target.cuda.nccl),
        ):
            if wanted is None:
                continue
            have_cuda = seen.get(name)
            if have_cuda is None or not have_cuda.version.startswith(wanted.rsplit(".", 1)[0]):
                add(
                    "cuda-version",
                    name,
                    wanted,
                    None if have_cuda is None else have_cuda.version,
                    "error",
                    f"the image's {name} is not the locked one",
                )
    return Report(
        image=image,
        target=target.id,
        findings=tuple(sorted(found, key=lambda f: (f.kind, f.subject))),
    )
