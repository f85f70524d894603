"""What the sections of `reprolock.verify.findings.verify` share: the finding, and the
context every section reads."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from reprolock.compat import Matrices
from reprolock.inventory import DebPackage, Inventory, PythonEnv
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
class Context:
    """What every section of the check reads."""

    target: LockedTarget
    image: LockedImage | None  # the lock's [image]
    inventory: Inventory
    diff_ids: tuple[str, ...]
    base_debs: tuple[DebPackage, ...]
    lock_digest: str | None
    unexpected: Severity  # of packages neither locked nor in the base
    matrices: Matrices | None = None  # the tables the CUDA kernels are judged with

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.inventory.labels)

    @property
    def base_layers(self) -> int:
        """How many of the image's layers are the locked base's (0 when it does not start
        with them): what they hold is the base as locked, not drift."""
        base = self.target.base
        if base is None or tuple(self.diff_ids[: len(base.diff_ids)]) != base.diff_ids:
            return 0
        return len(base.diff_ids)

    def after_base(self, layer: int | None) -> bool:
        """Whether a file written (or deleted) by ``layer`` is the image's own doing."""
        return layer is None or layer >= self.base_layers

    def locked_envs(self) -> list[PythonEnv]:
        """The Python environments the lock installs into: its venv's, else all."""
        venv = self.image.venv if self.image else None
        return [
            e
            for e in self.inventory.python_envs
            if venv is None or e.path.startswith(venv.rstrip("/") + "/")
        ]


Section = Callable[[Context], Iterable[Finding]]


def finding(
    kind: str,
    subject: str,
    expected: str | None,
    actual: str | None,
    severity: Severity,
    message: str,
    where: str | None = None,
) -> Finding:
    return Finding(
        kind=kind,
        subject=subject,
        expected=expected,
        actual=actual,
        severity=severity,
        where=where,
        message=message,
    )
