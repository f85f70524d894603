"""Can this host run the locked target? Driver floor, kernels for every GPU, container
toolkit — each a check with its reason."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace

from reprolock.compat.arches import ArchList, coverage
from reprolock.compat.gpus import GpuTable, UnknownGpu
from reprolock.host.facts import HostFacts, HostGpu
from reprolock.lock import LockedTarget
from reprolock.model import ComputeCapability, DriverVersion

# Why a driver cannot run a GPU of a compute capability at all (None: it can, or unknown).
CannotRun = Callable[[ComputeCapability, DriverVersion], str | None]


def _runs_anything(capability: ComputeCapability, driver: DriverVersion) -> str | None:
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class HostCheck:
    name: str  # "driver", "gpu 0", "toolkit"
    ok: bool | None  # None: cannot tell
    message: str


def _arches(target: LockedTarget) -> ArchList | None:
    cuda = target.cuda
    if cuda is None or not cuda.arches:
        return None
    return ArchList.parse(cuda.arches, [p.replace("compute_", "sm_") for p in cuda.ptx])


def with_capabilities(facts: HostFacts, table: GpuTable) -> HostFacts:
    """GPUs whose driver did not report a compute capability get it from the GPU table."""
    gpus = []
    for gpu in facts.gpus:
        known = gpu
        if gpu.capability is None:
            with contextlib.suppress(UnknownGpu):
                known = replace(gpu, capability=table.lookup(gpu.name).capability)
        gpus.append(known)
    return HostFacts(gpus=gpus, source=facts.source, error=facts.error, toolkit=facts.toolkit)


def evaluate(
    target: LockedTarget, facts: HostFacts, cannot_run: CannotRun = _runs_anything
) -> list[HostCheck]:
    cuda = target.cuda
    if cuda is None:
        return [
            HostCheck(
                name="target",
                ok=True,
                message=f"{target.id} is a CPU target: it runs without a GPU",
            )
        ]
    checks: list[HostCheck] = []
    driver = facts.driver
    if driver is None:
        reason = facts.error or "no NVIDIA GPU was found"
        checks.append(HostCheck(name="driver", ok=False, message=reason))
    else:
        checks.append(_driver_check(driver, target))
    arches = _arches(target)
    strict = DriverVersion.parse(cuda.driver_min)
    for gpu in facts.gpus:
        checks.append(_gpu_check(gpu, arches, driver, strict, cannot_run))
    if facts.toolkit is None:
        checks.append(
            HostCheck(
                name="toolkit",
                ok=False,
                message="the NVIDIA container toolkit was not found (nvidia-container-cli, "
                "nvidia-ctk or /etc/nvidia-container-runtime): containers will not see the GPUs",
            )
        )
    else:
        checks.append(
            HostCheck(name="toolkit", ok=True, message=f"NVIDIA container toolkit: {facts.toolkit}")
        )
    return checks


def _driver_check(driver: DriverVersion, target: LockedTarget) -> HostCheck:
    cuda = target.cuda
    assert cuda is not None
    strict = DriverVersion.parse(cuda.driver_min)
    compat = DriverVersion.parse(cuda.driver_min_compat) if cuda.driver_min_compat else strict
    if driver >= strict:
        return HostCheck(
            name="driver",
            ok=True,
            message=f"driver {driver} >= {strict}: runs CUDA {cuda.toolkit} with every feature",
        )
    if driver >= compat and cuda.compat == "minor":
        return HostCheck(
            name="driver",
            ok=True,
            message=f"driver {driver} >= {compat}: runs CUDA {cuda.toolkit} under minor-version "
            f"compatibility (below {strict}: no JIT of newer PTX, no features needing the newer "
            "driver)",
        )
    need = compat if cuda.compat == "minor" else strict
    return HostCheck(
        name="driver",
        ok=False,
        message=f"driver {driver} is older than the lock's floor {need} for CUDA {cuda.toolkit} "
        f"({cuda.compat} policy); upgrade the driver or lock for an older CUDA",
    )


def _gpu_check(
    gpu: HostGpu,
    arches: ArchList | None,
    driver: DriverVersion | None,
    strict: DriverVersion,
    cannot_run: CannotRun,
) -> HostCheck:
    name = f"gpu {gpu.index}"
    cap = gpu.capability
    if cap is None:
        return HostCheck(
            name=name,
            ok=None,
            message=f"{gpu.name}: compute capability unknown (old driver, GPU not in the table)",
        )
    why = cannot_run(cap, driver) if driver is not None else None
    if why is not None:
        return HostCheck(name=name, ok=False, message=f"{gpu.name} ({cap.sm}): {why}")
    if arches is None:
        return HostCheck(
            name=name,
            ok=None,
            message=f"{gpu.name} ({cap.sm}): the lock has no arch list to check it against",
        )
    found = coverage(arches, cap)
    if found.how is None:
        return HostCheck(
            name=name,
            ok=False,
            message=f"{gpu.name} ({cap.sm}): the locked build has no kernels for it "
            f"({arches.describe()})",
        )
    if found.how == "ptx" and driver is not None and driver < strict:
        return HostCheck(
            name=name,
            ok=False,
            message=f"{gpu.name} ({cap.sm}): only {found.describe()}, which needs driver >= "
            f"{strict} (this host has {driver})",
        )
    return HostCheck(name=name, ok=True, message=f"{gpu.name} ({cap.sm}): {found.describe()}")
