"""Which GPUs a build's kernels run on: native SASS or JIT-compiled PTX.

A cubin built for ``sm_XY`` runs on every GPU of the same major ``X`` with minor ``>= Y``
(not across majors); an arch-specific build (``sm_90a``) runs on exactly that capability.
PTX for ``compute_XY`` is JIT-compiled by the driver for any GPU at or above ``X.Y`` — but the
driver must understand that PTX, so PTX JIT is not covered by CUDA minor-version compatibility.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from reprolock.model import ComputeCapability

How = Literal["sass", "ptx"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchList:
    """The compute capabilities a build carries kernels for."""

    sass: tuple[ComputeCapability, ...]
    ptx: tuple[ComputeCapability, ...] = ()
    unconfirmed: str | None = None  # why the list is not a confirmed fact, when it is not
    sources: tuple[str, ...] = ()
    ptx_isa: str | None = None  # the PTX ISA version of its PTX ("8.3"), when known
    measured: str | None = None  # "<wheel> sha256:<hex>" when measured from a file

    @classmethod
    def parse(
        cls,
        sass: Iterable[str],
        ptx: Iterable[str] = (),
        *,
        unconfirmed: str | None = None,
        sources: Iterable[str] = (),
        ptx_isa: str | None = None,
        measured: str | None = None,
    ) -> ArchList:
        def caps(values: Iterable[str]) -> tuple[ComputeCapability, ...]:
            return tuple(sorted({ComputeCapability.parse(v) for v in values}, key=_order))

        return cls(
            sass=caps(sass),
            ptx=caps(ptx),
            unconfirmed=unconfirmed,
            sources=tuple(sources),
            ptx_isa=ptx_isa,
            measured=measured,
        )

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ArchList:
        """A matrix row's ``sass``, ``ptx``, ``unconfirmed``, ``sources``, ``ptx-isa`` and
        ``measured`` keys."""
        return cls.parse(
            row["sass"],
            row["ptx"],
            unconfirmed=row.get("unconfirmed"),
            sources=row.get("sources", ()),
            ptx_isa=row.get("ptx-isa"),
            measured=row.get("measured"),
        )

    def describe(self) -> str:
        """``sm_50 … sm_90, PTX compute_90``."""
        text = " ".join(c.sm for c in self.sass) or "no native kernels"
        if self.ptx:
            text += ", PTX " + " ".join(f"compute_{c.major}{c.minor}" for c in self.ptx)
        return text


@dataclass(frozen=True, slots=True, kw_only=True)
class Coverage:
    """How a build runs on one GPU: ``how`` is None when it has no kernels for it."""

    device: ComputeCapability
    how: How | None
    via: ComputeCapability | None = None

    def describe(self) -> str:
        if self.how == "sass" and self.via is not None:
            return f"native {self.via.sm}"
        if self.how == "ptx" and self.via is not None:
            return f"PTX compute_{self.via.major}{self.via.minor}, JIT-compiled"
        return "no kernels"


def _order(cap: ComputeCapability) -> tuple[int, int, str]:
    return (cap.major, cap.minor, cap.suffix)


def runs_native(built: ComputeCapability, device: ComputeCapability) -> bool:
    if built.suffix == "a":
        return (built.major, built.minor) == (device.major, device.minor)
    return built.major == device.major and built.minor <= device.minor


def coverage(arches: ArchList, device: ComputeCapability) -> Coverage:
    """Native kernels when there are any; otherwise the newest PTX the device can JIT."""
    native = [c for c in arches.sass if runs_native(c, device)]
    if native:  # the newest, and of equals the portable kernel over an arch-specific one
        best = max(native, key=lambda c: (c.major, c.minor, c.suffix == ""))
        return Coverage(device=device, how="sass", via=best)
    jit = [c for c in arches.ptx if (c.major, c.minor) <= (device.major, device.minor)]
    if jit:
        return Coverage(device=device, how="ptx", via=max(jit, key=_order))
    return Coverage(device=device, how=None)
