"""The CUDA stack of a locked target, read from what was actually resolved.

The driver floor is the maximum over every CUDA component that ends up in the image —
the base image's toolkit (``CUDA_VERSION``) and the CUDA runtime wheels the Python layer
pinned (``nvidia-cuda-runtime-cu12==12.4.127`` means CUDA 12.4) — under the spec's policy.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from reprolock.compat.cuda import CudaTable
from reprolock.errors import Problem, Unsatisfiable
from reprolock.lock import CudaStack, PythonPackage
from reprolock.model import CudaVersion
from reprolock.spec import GpuSpec

# CUDA runtime wheels (cudart's version tracks CUDA's), and the `cuda-toolkit` metapackage
# that torch >= 2.11 pins instead of per-library wheels.
_RUNTIME = re.compile(r"^(nvidia-cuda-runtime(-cu\d+)?|cuda-toolkit)$")
_CUDNN = re.compile(r"^nvidia-cudnn-cu\d+$")
_NCCL = re.compile(r"^nvidia-nccl-cu\d+$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Component:
    cuda: CudaVersion
    source: str  # e.g. "base image CUDA_VERSION=12.4.1", "nvidia-cuda-runtime-cu12 12.4.127"


def components(packages: Sequence[PythonPackage], base_env: Mapping[str, str]) -> list[Component]:
    """Every CUDA runtime in the target: the base image's and the wheels'."""
    found = []
    cuda_env = base_env.get("CUDA_VERSION")
    if cuda_env:
        with contextlib.suppress(ValueError):
            found.append(
                Component(
                    cuda=CudaVersion.parse(cuda_env), source=f"base image CUDA_VERSION={cuda_env}"
                )
            )
    for package in packages:
        if _RUNTIME.match(package.name):
            parts = package.version.split("+")[0].split(".")
            if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
                found.append(
                    Component(
                        cuda=CudaVersion.parse(f"{parts[0]}.{parts[1]}"),
                        source=f"{package.name} {package.version}",
                    )
                )
    return found


def _version_of(packages: Sequence[PythonPackage], pattern: re.Pattern[str]) -> str | None:
    return next((p.version for p in packages if pattern.match(p.name)), None)


def decide_stack(
    target_id: str,
    packages: Sequence[PythonPackage],
    base_env: Mapping[str, str],
    gpu: GpuSpec,
    table: CudaTable,
) -> CudaStack | None:
    """The lock's `cuda` section, or None when nothing CUDA ended up in the target.

    Raises `Unsatisfiable` when the fleet's oldest driver cannot run a component.
    """
    found = components(packages, base_env)
    if not found:
        return None
    needs = []
    for component in found:
        try:
            strict = table.need(component.cuda, "strict")
            minor = table.need(component.cuda, "minor")
        except ValueError as exc:
            raise Unsatisfiable(
                f"{target_id}: {exc} ({component.source}).",
                hint="Update reprolock for newer CUDA knowledge.",
            ) from None
        needs.append((component, strict, minor))
    toolkit = max(c.cuda for c, _, _ in needs)
    driver_min = max(s.driver for _, s, _ in needs)
    driver_compat = max(m.driver for _, _, m in needs)
    policy = gpu.compat.value
    required = driver_compat if policy == "minor" else driver_min
    if gpu.driver is not None and gpu.driver < required:
        worst = max(needs, key=lambda n: n[2].driver if policy == "minor" else n[1].driver)
        component, strict, minor = worst
        problems = [
            Problem(
                message=f"{component.source} needs driver >= {strict.driver} "
                f"(strict) or >= {minor.driver} (minor-version compatibility)"
            )
        ]
        raise Unsatisfiable(
            f"{target_id}: the fleet's oldest driver {gpu.driver} cannot run CUDA "
            f"{component.cuda} under the {policy} policy (needs >= {required}):",
            problems=problems,
            hint=(
                f'Pin an older CUDA build (e.g. gpu.cuda = "<{component.cuda}" with a '
                "matching framework build), raise gpu.driver after upgrading the fleet"
                + (', or use compat = "minor"' if policy == "strict" else "")
                + "."
            ),
        )
    return CudaStack(
        toolkit=str(toolkit),
        driver_min=str(driver_min),
        driver_min_compat=str(driver_compat),
        compat=policy,
        cudnn=_version_of(packages, _CUDNN) or base_env.get("NV_CUDNN_VERSION") or None,
        nccl=_version_of(packages, _NCCL),
        devices=tuple(sorted((d.requested, d.capability.sm) for d in gpu.devices)),
    )
