"""GPU names → compute capability, and GPU architectures → the drivers that can run them,
from ``matrices/gpus.toml``.

Names are matched forgivingly, so that what ``nvidia-smi --query-gpu=name`` prints resolves:
case, punctuation and vendor words are ignored ("NVIDIA", "GeForce", "Tesla"), and so are the
memory, form-factor and partition words that tell variants of one chip apart ("80GB", "HBM3",
"SXM4", "PCIe", "NVL", "Laptop GPU", "MIG 1g.10gb"): "NVIDIA A100-SXM4-80GB" is the A100.
Other spellings are explicit aliases in the table.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reprolock.compat.cuda import CudaTable, DriverNeed
from reprolock.model import ComputeCapability, CudaVersion, DriverVersion

_NOISE = re.compile(r"\b(nvidia|geforce|tesla)\b", re.IGNORECASE)
# Words that name a variant of a product, not another product: a MIG partition
# ("MIG 1g.10gb", "MIG 2c.3g.20gb"), memory size and kind ("80GB", "HBM3", "HBM3e"),
# form factor ("SXM4", "PCIe", "NVL", "NVL72"), a laptop part ("Laptop GPU"), and the word
# "Generation" of "RTX 6000 Ada Generation".
_VARIANT = re.compile(
    r"\bmig\s+(\d+c\.)?\d+g\.\d+gb\b"
    r"|\b\d+\s*gb\b"
    r"|\bhbm\d*e?\b"
    r"|\bsxm\d*\b"
    r"|\bpcie\b"
    r"|\bnvl\d*\b"
    r"|\blaptop(\s+gpu)?\b"
    r"|\bgeneration\b",
    re.IGNORECASE,
)
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def _key(name: str) -> str:
    """Matching key for a GPU name: case, vendor and variant words and punctuation ignored."""
    spaced = re.sub(r"[-_/,]+", " ", name.lower())
    return _NON_ALNUM.sub("", _NOISE.sub(" ", _VARIANT.sub(" ", spaced)))


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuModel:
    """One GPU product row."""

    name: str
    aliases: tuple[str, ...]
    capability: ComputeCapability
    architecture: str
    sources: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Architecture:
    """One ``[[arch]]`` row: the SM versions of a GPU architecture and the CUDA and driver
    releases that support it."""

    sm: tuple[ComputeCapability, ...]
    name: str
    first_cuda: CudaVersion | None  # None: older than the oldest toolkit list read
    dropped_in: CudaVersion | None  # the first toolkit that cannot compile for it
    last_driver_branch: int | None  # the newest driver branch that still runs it
    tegra: tuple[ComputeCapability, ...]  # integrated (Jetson) GPUs: their driver is L4T's
    sources: tuple[str, ...]

    def covers(self, capability: ComputeCapability) -> bool:
        return any((c.major, c.minor) == (capability.major, capability.minor) for c in self.sm)


class UnknownGpu(ValueError):
    """A GPU name that is not in the table; carries close names."""

    def __init__(self, name: str, suggestions: Sequence[str]) -> None:
        self.name = name
        self.suggestions = tuple(suggestions)
        super().__init__(f'unknown GPU "{name}"')


def _version(text: str | None) -> CudaVersion | None:
    """``"12.8"`` → 12.8; prose ("<=7.0", "still supported ...") → None."""
    try:
        return None if text is None else CudaVersion.parse(text)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class GpuTable:
    """The GPU products reprolock knows, looked up by forgiving name match, and the
    architectures they belong to."""

    models: tuple[GpuModel, ...]
    architectures: tuple[Architecture, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GpuTable:
        models = tuple(
            GpuModel(
                name=row["name"],
                aliases=tuple(row.get("aliases", ())),
                capability=ComputeCapability.parse(row["cc"]),
                architecture=row["arch"],
                sources=tuple(row["sources"]),
            )
            for row in data.get("gpu", ())
        )
        architectures = tuple(
            Architecture(
                sm=tuple(ComputeCapability.parse(sm) for sm in row["sm"]),
                name=row["name"],
                first_cuda=_version(row.get("first-cuda")),
                dropped_in=_version(row.get("dropped-in")),
                last_driver_branch=row.get("last-driver-branch"),
                tegra=tuple(ComputeCapability.parse(sm) for sm in row.get("tegra", ())),
                sources=tuple(row["sources"]),
            )
            for row in data.get("arch", ())
        )
        return cls(models, architectures)

    def _index(self) -> dict[str, GpuModel]:
        index: dict[str, GpuModel] = {}
        for model in self.models:
            for name in (model.name, *model.aliases):
                index.setdefault(_key(name), model)
        return index

    def lookup(self, name: str) -> GpuModel:
        """The product called ``name`` ("A100", "NVIDIA H100 80GB HBM3", "rtx 4090").

        Raises `UnknownGpu` with up to three close names.
        """
        index = self._index()
        key = _key(name)
        if key in index:
            return index[key]
        close = difflib.get_close_matches(key, list(index), n=3, cutoff=0.6)
        if not close:
            close = [k for k in index if key and (key in k or k in key)][:3]
        suggestions = sorted({_display(index[k]) for k in close})
        raise UnknownGpu(name, suggestions)

    def architecture(self, capability: ComputeCapability) -> Architecture | None:
        """The ``[[arch]]`` row of a compute capability (``9.0a`` is 9.0's); None if unknown.

        A CUDA 13 name that replaced an older one (Thor: sm_101 → sm_110) has its own row.
        """
        return next((a for a in self.architectures if a.covers(capability)), None)

    def driver_floor(self, capability: ComputeCapability, cuda: CudaTable) -> DriverNeed | None:
        """The least driver that can run a GPU of ``capability`` at all: the strict driver of
        the first CUDA release that supports its architecture (Blackwell sm_100/sm_120: CUDA
        12.8, 570.26). A necessary condition, not a sufficient one: a product launched later
        than its architecture can need a newer driver.

        None when it is not known: an architecture not in the table, one older than every
        toolkit in ``cuda``, or an integrated Jetson GPU (its driver comes with Jetson Linux).
        """
        arch = self.architecture(capability)
        if arch is None or arch.first_cuda is None or self._tegra(arch, capability):
            return None
        try:
            need = cuda.need(arch.first_cuda, "strict")
        except ValueError:
            return None
        return DriverNeed(
            driver=need.driver,
            policy="strict",
            reason=f"sm_{capability.major}{capability.minor} ({arch.name}) needs CUDA "
            f"{arch.first_cuda} or newer: {need.reason}",
            exact=need.exact,
        )

    def unsupported_by(
        self, driver: DriverVersion, cuda: CudaTable
    ) -> list[tuple[Architecture, str]]:
        """The architectures a driver cannot run, each with why: too old for the first CUDA
        that supports them, or of a branch newer than the last that supports them."""
        out = []
        for arch in self.architectures:
            dgpu = [c for c in arch.sm if not self._tegra(arch, c)]
            if not dgpu:
                continue
            floor = self.driver_floor(dgpu[0], cuda)
            if floor is not None and driver < floor.driver:
                out.append(
                    (
                        arch,
                        f"needs driver >= {floor.driver}, that of CUDA {arch.first_cuda}, "
                        "the first CUDA that supports it",
                    )
                )
            elif arch.last_driver_branch is not None and driver.major > arch.last_driver_branch:
                out.append(
                    (arch, f"R{arch.last_driver_branch} is the last driver branch that runs it")
                )
        return out

    def cannot_run(
        self, capability: ComputeCapability, driver: DriverVersion, cuda: CudaTable
    ) -> str | None:
        """Why ``driver`` cannot run a GPU of ``capability`` at all, or None when it can (or
        it is not known that it cannot)."""
        arch = self.architecture(capability)
        if arch is None or self._tegra(arch, capability):
            return None
        floor = self.driver_floor(capability, cuda)
        if floor is not None and driver < floor.driver:
            return f"needs driver >= {floor.driver} to run at all ({floor.reason})"
        if arch.last_driver_branch is not None and driver.major > arch.last_driver_branch:
            return (
                f"driver {driver} no longer runs {arch.name}: R{arch.last_driver_branch} is "
                "the last driver branch that does"
            )
        return None

    @staticmethod
    def _tegra(arch: Architecture, capability: ComputeCapability) -> bool:
        return any((c.major, c.minor) == (capability.major, capability.minor) for c in arch.tegra)


def _display(model: GpuModel) -> str:
    """The shortest name users would write for a product."""
    stripped = _NOISE.sub("", model.name).strip()
    return " ".join(stripped.split())
