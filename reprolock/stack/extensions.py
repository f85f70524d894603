"""CUDA extensions (flash-attn, bitsandbytes, xformers, torchvision ...): which of the
fleet's GPUs the kernels measured from their wheels run on.

Pure: the measurement comes in as kernels per shared object; what comes out is the library
that is loaded for the target's CUDA, its arch list, and per GPU how it runs or why not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from reprolock.compat import Matrices
from reprolock.compat.arches import ArchList, Coverage, coverage
from reprolock.compat.fatbin import Kernels
from reprolock.compat.wheel_kernels import primary
from reprolock.model import CudaVersion, DriverVersion
from reprolock.spec.model import GpuDevice, GpuSpec
from reprolock.stack.judge import device_name, jit_floor

# bitsandbytes-style libraries built once per CUDA: libbitsandbytes_cuda121.so
_CUDA_TAG = re.compile(r"cuda(\d)(\d)(\d?)(?!\d)")


def _cuda_of(member: str) -> tuple[int, int] | None:
    found = _CUDA_TAG.search(member.rsplit("/", 1)[-1])
    if found is None:
        return None
    major, second, third = found.groups()
    # "118" is 11.8, "121" is 12.1, "130" is 13.0: a CUDA minor is one digit
    return (int(major + second), int(third)) if third else (int(major), int(second))


def library_for(
    libraries: Mapping[str, Kernels], package: str, cuda: CudaVersion | None
) -> tuple[str, Kernels] | None:
    """The shared object whose kernels run: among libraries built per CUDA (their names
    carry the CUDA, ``_cuda121``), the one for the target's CUDA (else the newest older one
    of its major); otherwise the library named after the package with the most fatbins.
    None when the wheel carries no kernels, or none for the target's CUDA."""
    carrying = {n: k for n, k in libraries.items() if not k.empty}
    tagged = {n: c for n in carrying if (c := _cuda_of(n)) is not None}
    if not tagged:
        return primary(carrying, package)
    if cuda is None:
        return None
    want = (cuda.major, cuda.minor)
    usable = [(c, n) for n, c in tagged.items() if c[0] == want[0] and c <= want]
    if not usable:
        return None
    name = max(usable)[1]
    return name, carrying[name]


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceRun:
    """How a build's kernels run one GPU."""

    device: GpuDevice
    coverage: Coverage  # native kernels of its family, PTX it JIT-compiles, or none
    jit_driver: tuple[DriverVersion, str] | None = None  # what that JIT needs, and why


def judge_devices(
    arches: ArchList, devices: Sequence[GpuDevice], m: Matrices
) -> tuple[DeviceRun, ...]:
    """Per GPU: native kernels of its family, else the newest PTX it can JIT (with the
    driver that JIT needs: that of the first CUDA that loads the PTX's ISA), else none."""
    floor = jit_floor(arches, None, m)
    out = []
    for device in devices:
        found = coverage(arches, device.capability)
        jit = floor if found.how == "ptx" else None
        out.append(DeviceRun(device=device, coverage=found, jit_driver=jit))
    return tuple(out)


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtensionVerdict:
    arches: ArchList
    coverage: tuple[tuple[str, str], ...]  # (device as requested, how it runs / "no kernels")
    problems: tuple[str, ...]  # one per GPU it cannot run on


def judge_extension(arches: ArchList, gpu: GpuSpec, m: Matrices) -> ExtensionVerdict:
    """Per GPU of the fleet: native kernels of its family, else PTX it can JIT on the
    fleet's driver (the driver of the PTX's ISA), else nothing."""
    cov: list[tuple[str, str]] = []
    problems: list[str] = []
    for run in judge_devices(arches, gpu.devices, m):
        device = run.device
        name = device_name(device.requested, device.capability)
        if run.coverage.how is None:
            cov.append((device.requested, "no kernels"))
            problems.append(f"has no kernels for {name} ({arches.describe()})")
            continue
        cov.append((device.requested, run.coverage.describe()))
        if run.jit_driver is not None and gpu.driver is not None:
            driver, why = run.jit_driver
            if gpu.driver < driver:
                problems.append(
                    f"runs {name} only by JIT-compiling its PTX, which needs driver >= "
                    f"{driver} ({why}); the fleet's oldest is {gpu.driver}"
                )
    return ExtensionVerdict(arches=arches, coverage=tuple(cov), problems=tuple(problems))
