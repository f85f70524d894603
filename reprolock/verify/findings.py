"""Drift between a built image and its locked target, as findings with a severity.

Each section of the check is one small function over a `Context`: what the lock pins
(`reprolock.verify.checks`), the files themselves (`reprolock.verify.integrity`) and the
CUDA kernels they carry (`reprolock.verify.kernels`); `verify` joins them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from reprolock.compat import Matrices
from reprolock.inventory import DebPackage, Inventory
from reprolock.lock import LockedImage, LockedTarget
from reprolock.verify import checks, integrity, kernels
from reprolock.verify.context import (
    LABEL_BASE_DIGEST,
    LABEL_DRIVER,
    LABEL_LOCK_DIGEST,
    LABEL_TARGET,
    Context,
    Finding,
    Section,
    Severity,
)

__all__ = [
    "LABEL_BASE_DIGEST",
    "LABEL_DRIVER",
    "LABEL_LOCK_DIGEST",
    "LABEL_TARGET",
    "Finding",
    "Report",
    "Severity",
    "verify",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    image: str
    target: str
    findings: tuple[Finding, ...] = field(default=())

    @property
    def failed(self) -> bool:
        return any(f.severity == "error" for f in self.findings)


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
    matrices: Matrices | None = None,
) -> Report:
    """Every way the image differs from ``target``; unexpected packages are warnings
    unless ``strict``; subjects named in ``ignore`` (a package, "package:path", or
    "package:GPU") are skipped. The image's CUDA kernels are judged against the target's GPUs with
    ``matrices`` (not without)."""
    context = Context(
        target=target,
        image=image_settings,
        inventory=inventory,
        diff_ids=tuple(diff_ids),
        base_debs=tuple(base_debs),
        lock_digest=lock_digest,
        unexpected="error" if strict else "warning",
        matrices=matrices,
    )
    sections: list[Section] = [*checks.SECTIONS, *integrity.SECTIONS, *kernels.SECTIONS]
    found = [
        f
        for section in sections
        for f in section(context)
        if f.subject not in ignore and f.subject.split(":", 1)[0] not in ignore
    ]
    return Report(
        image=image,
        target=target.id,
        findings=tuple(sorted(found, key=lambda f: (f.kind, f.subject))),
    )
