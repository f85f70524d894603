"""The CUDA kernels of an image's packages, for ``inspect``: the GPUs ``--gpus`` names, how
each package's kernels run them, and the JSON of both."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from reprolock.api.project import shipped_matrices
from reprolock.compat.fatbin import Kernels
from reprolock.compat.gpus import UnknownGpu
from reprolock.errors import InputError
from reprolock.inventory import PackageKernels
from reprolock.model import ComputeCapability
from reprolock.spec.model import GpuDevice
from reprolock.stack.extensions import DeviceRun, judge_devices
from reprolock.stack.judge import device_name


def gpu_devices(names: Iterable[str]) -> tuple[GpuDevice, ...]:
    """The GPUs ``--gpus`` names (``A100,V100``; a compute capability such as ``8.0`` or
    ``sm_90`` too), in order, each once; `InputError` naming every unknown one."""
    table = shipped_matrices().gpus
    devices: list[GpuDevice] = []
    unknown: list[str] = []
    for name in dict.fromkeys(n.strip() for text in names for n in text.split(",")):
        if not name:
            continue
        if ComputeCapability.looks_like(name):
            cap = ComputeCapability.parse(name)
            devices.append(GpuDevice(requested=name, model=None, capability=cap))
            continue
        try:
            model = table.lookup(name)
        except UnknownGpu as exc:
            close = " or ".join(f'"{s}"' for s in exc.suggestions)
            unknown.append(f'"{name}"' + (f" (did you mean {close}?)" if close else ""))
            continue
        devices.append(GpuDevice(requested=name, model=model.name, capability=model.capability))
    if unknown:
        raise InputError(
            f"--gpus names {'an unknown GPU' if len(unknown) == 1 else 'unknown GPUs'}: "
            f"{', '.join(unknown)}.",
            hint="Name GPUs from `reprolock matrix gpus` (e.g. --gpus A100,V100), or give "
            'compute capabilities such as "8.0" or "sm_90".',
        )
    return tuple(devices)


def kernel_runs(
    packages: Sequence[PackageKernels], devices: Sequence[GpuDevice]
) -> tuple[tuple[DeviceRun, ...], ...]:
    """For each package (in order), how its kernels run each of ``devices``."""
    if not devices:
        return ()
    m = shipped_matrices()
    return tuple(judge_devices(p.kernels.arch_list(), devices, m) for p in packages)


def describe_run(run: DeviceRun) -> str:
    """``native sm_80``, ``PTX compute_90, JIT-compiled (driver >= 580.65.06)``, or
    ``no kernels``."""
    text = run.coverage.describe()
    if run.jit_driver is not None:
        text += f" (driver >= {run.jit_driver[0]})"
    return text


def kernels_list(
    packages: Sequence[PackageKernels], runs: Sequence[tuple[DeviceRun, ...]]
) -> list[dict[str, Any]]:
    """The ``kernels`` section of ``inspect --format json``."""
    out = []
    for i, package in enumerate(packages):
        item: dict[str, Any] = {
            "kind": package.kind,
            "name": package.name,
            "version": package.version,
            "environment": package.env,
            "library": package.library,
            **_kernels_dict(package.kernels),
            "libraries": [
                {"path": lib.path, "layer": lib.layer, **_kernels_dict(lib.kernels)}
                for lib in package.libraries
            ],
        }
        if runs:
            item["gpus"] = [_run_dict(run) for run in runs[i]]
        out.append(item)
    return out


def _arch(cap: ComputeCapability, *, ptx: bool) -> str:
    """``sm_80``, or ``compute_90`` for PTX."""
    return f"compute_{cap.major}{cap.minor}{cap.suffix}" if ptx else cap.sm


def _kernels_dict(kernels: Kernels) -> dict[str, Any]:
    return {
        "sass": [c.sm for c in kernels.sass],
        "ptx": [{"arch": _arch(p.arch, ptx=True), "isa": p.isa} for p in kernels.ptx],
    }


def _run_dict(run: DeviceRun) -> dict[str, Any]:
    device, found = run.device, run.coverage
    return {
        "gpu": device.requested,
        "sm": device.capability.sm,
        "name": device_name(device.requested, device.capability),
        "how": found.how,
        "via": None if found.via is None else _arch(found.via, ptx=found.how == "ptx"),
        "runs": found.describe(),
        "jit-driver": None if run.jit_driver is None else str(run.jit_driver[0]),
    }
