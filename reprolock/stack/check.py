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

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from reprolock.compat import Matrices
from reprolock.compat.arches import ArchList, coverage
from reprolock.compat.cuda import DriverNeed, Policy
from reprolock.compat.frameworks import Build
from reprolock.errors import Problem, Unsatisfiable
from reprolock.lock import CudaStack, PythonPackage
from reprolock.model import CudaVersion
from reprolock.spec import GpuSpec
from reprolock.stack.plan import StackPlan, cuda_of_variant

# CUDA runtime wheels (cudart's version tracks CUDA's), and the `cuda-toolkit` metapackage
# that torch >= 2.11 pins instead of per-library wheels.
_RUNTIME = re.compile(r"^(nvidia-cuda-runtime(-cu\d+)?|cuda-toolkit)$")
_CUDNN = re.compile(r"^nvidia-cudnn(-cu\d+)?$")
_NCCL = re.compile(r"^nvidia-nccl-cu\d+$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Component:
    cuda: CudaVersion  # the toolkit release when known exactly (12.8.1), else major.minor
    source: str  # e.g. "base image CUDA_VERSION=12.4.1", "nvidia-cuda-runtime-cu12 12.4.127"
    runtime: str | None = None  # the CUDA runtime (cudart) version a wheel pins, if one


def need(component: Component, policy: str, m: Matrices) -> DriverNeed:
    """The least driver for a component: a runtime wheel's cudart maps to its exact toolkit
    release (12.8.90 is CUDA 12.8 Update 1: 570.124.06, not 12.8's 570.26)."""
    which: Policy = "minor" if policy == "minor" else "strict"
    if component.runtime is not None:
        return m.cuda.need_for_runtime(component.runtime, which)
    return m.cuda.need(component.cuda, which)


def components(
    packages: Sequence[PythonPackage], base_env: Mapping[str, str], m: Matrices | None = None
) -> list[Component]:
    """Every CUDA runtime in the target: the base image's and the wheels' (with ``m``, a
    runtime wheel names its exact toolkit release where the tables know its cudart)."""
    found = []
    cuda_env = base_env.get("CUDA_VERSION")
    if cuda_env:
        with contextlib.suppress(ValueError):
            found.append(
                Component(
                    cuda=CudaVersion.parse(cuda_env), source=f"base image CUDA_VERSION={cuda_env}"
                )
            )
    runtimes = [p for p in packages if _RUNTIME.match(p.name)]
    for package in packages:
        # PyTorch index builds before the nvidia-* wheels (e.g. 1.13.1+cu117) bundle CUDA.
        local = package.version.partition("+")[2]
        if not runtimes and package.name == "torch" and (cuda := cuda_of_variant(local)):
            found.append(Component(cuda=cuda, source=f"torch {package.version}"))
        if _RUNTIME.match(package.name):
            version = package.version.split("+")[0]
            parts = version.split(".")
            if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
                toolkit = package.name == "cuda-toolkit"  # pins the toolkit release itself
                cuda = CudaVersion.parse(f"{parts[0]}.{parts[1]}")
                exact = None
                if toolkit:
                    with contextlib.suppress(ValueError):
                        cuda = CudaVersion.parse(".".join(parts[:3]))
                elif m is not None and (release := m.cuda.release_for_runtime(version)):
                    exact = release.version
                found.append(
                    Component(
                        cuda=exact or cuda,
                        source=f"{package.name} {package.version}",
                        runtime=None if toolkit or len(parts) < 3 else version,
                    )
                )
    return found


def gpu_floors(gpu: GpuSpec, m: Matrices) -> list[tuple[str, DriverNeed]]:
    """(device as requested, the least driver that runs it at all) for each known GPU."""
    out = []
    for device in gpu.devices:
        floor = m.gpus.driver_floor(device.capability, m.cuda)
        if floor is not None:
            out.append((device.requested, floor))
    return out


def _version_of(packages: Sequence[PythonPackage], pattern: re.Pattern[str]) -> str | None:
    return next((p.version for p in packages if pattern.match(p.name)), None)


def decide_stack(
    target_id: str,
    packages: Sequence[PythonPackage],
    base_env: Mapping[str, str],
    gpu: GpuSpec,
    matrices: Matrices,
    *,
    platform: str = "linux/amd64",
    plan: StackPlan | None = None,
) -> CudaStack | None:
    """The lock's `cuda` section, or None when nothing CUDA ended up in the target.

    Raises `Unsatisfiable` when the fleet's oldest driver cannot run a component, or when
    the resolved framework build has no kernels for a target GPU.
    """
    found = components(packages, base_env, matrices)
    if not found:
        return None
    needs = []
    for component in found:
        try:
            strict = need(component, "strict", matrices)
            minor = need(component, "minor", matrices)
        except ValueError as exc:
            raise Unsatisfiable(
                f"{target_id}: {exc} ({component.source}).",
                hint="Update reprolock for newer CUDA knowledge.",
            ) from None
        needs.append((component, strict, minor))
    toolkit = max(c.cuda for c, _, _ in needs)
    # Each GPU needs the driver of the first CUDA that supports its architecture, whatever
    # the policy (a Blackwell card is unknown to an R535 driver).
    floors = gpu_floors(gpu, matrices)
    gpu_min = max((f.driver for _, f in floors), default=None)
    driver_min = max([s.driver for _, s, _ in needs] + ([gpu_min] if gpu_min else []))
    driver_compat = max([m.driver for _, _, m in needs] + ([gpu_min] if gpu_min else []))
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
    builds = resolved_builds(packages, matrices, platform, plan)
    arches = _merged_arches(builds)
    covered = _coverage(target_id, gpu, builds, arches)
    cudnn = _version_of(packages, _CUDNN) or _base_cudnn(base_env)
    return CudaStack(
        toolkit=str(toolkit),
        driver_min=str(driver_min),
        driver_min_compat=str(driver_compat),
        compat=policy,
        cudnn=cudnn,
        nccl=_version_of(packages, _NCCL),
        arches=tuple(c.sm for c in arches.sass) if arches else (),
        ptx=tuple(f"compute_{c.major}{c.minor}" for c in arches.ptx) if arches else (),
        devices=tuple(sorted((d.requested, d.capability.sm) for d in gpu.devices)),
        coverage=tuple(sorted(covered)),
        frameworks=tuple(sorted(b.label for b in builds)),
        conflicts=tuple(conflicts(packages, base_env)),
    )


def _base_cudnn(base_env: Mapping[str, str]) -> str | None:
    value = base_env.get("NV_CUDNN_VERSION")
    return value.split("-")[0] if value else None


def resolved_builds(
    packages: Sequence[PythonPackage],
    matrices: Matrices,
    platform: str,
    plan: StackPlan | None,
) -> list[Build]:
    """The framework builds the resolution actually picked (versions from the pins, the kind
    from the local label or from the plan)."""
    pins: dict[str, Version] = {}
    for package in packages:
        try:
            pins[canonicalize_name(package.name)] = Version(package.version)
        except InvalidVersion:
            continue
    out: list[Build] = []
    torch = pins.get("torch")
    if torch is not None and (release := matrices.torch.release(torch)) is not None:
        variant = matrices.torch.variant_of(torch)
        build = next(
            (b for b in matrices.torch.builds(release, platform) if b.variant == variant), None
        )
        if build is not None:
            out.append(build)
    if plan is not None:
        for choice in plan.choices:
            name = choice.request.name
            if name == "torch" or name not in pins:
                continue
            chosen = choice.verdict.build
            if name == "tensorflow" and (tf := matrices.tensorflow.release(pins[name])):
                out.append(matrices.tensorflow.build(tf, and_cuda=chosen.variant == "and-cuda"))
            elif name == "jax" and (jx := matrices.jax.release(pins[name])):
                major = 13 if chosen.variant.startswith("cuda13") else 12
                build = matrices.jax.build(jx, major, local=chosen.needs_system_cuda)
                if build is not None:
                    out.append(build)
    return out


def _merged_arches(builds: Sequence[Build]) -> ArchList | None:
    """The arch list of the framework whose kernels decide coverage (the first with one)."""
    return next((b.arches for b in builds if b.arches is not None), None)


def _coverage(
    target_id: str, gpu: GpuSpec, builds: Sequence[Build], arches: ArchList | None
) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    missing = []
    if not builds:
        return out  # no framework the matrices know: nothing to say about kernels
    for device in gpu.devices:
        if arches is None:
            out.append((device.requested, "unknown (not in the matrices)"))
            continue
        found = coverage(arches, device.capability)
        out.append((device.requested, found.describe()))
        if found.how is None:
            missing.append(f"{device.capability.sm} ({device.requested})")
    if missing:
        label = next(b.label for b in builds if b.arches is arches)
        raise Unsatisfiable(
            f"{target_id}: {label} has no kernels for {', '.join(missing)}; it carries "
            f"{arches.describe() if arches else 'none'}.",
            hint="Let reprolock choose the build (drop the explicit torch index route) or "
            "require a release whose build covers these GPUs (`reprolock matrix torch X.Y`).",
        )
    return out


def conflicts(packages: Sequence[PythonPackage], base_env: Mapping[str, str]) -> list[str]:
    """Disagreeing copies of the CUDA runtime or cuDNN: base image vs wheels, or wheels
    for two CUDA majors."""
    out = []
    runtimes = [
        (c.cuda, c.source) for c in components(packages, base_env) if "CUDA_VERSION" not in c.source
    ]
    base_cuda = base_env.get("CUDA_VERSION")
    if base_cuda:
        with contextlib.suppress(ValueError):
            base = CudaVersion.parse(base_cuda)
            for cuda, source in runtimes:
                if cuda.parts[:2] != base.parts[:2]:
                    out.append(
                        f"two CUDA runtimes: the base image has CUDA {base_cuda} and "
                        f"{source} brings CUDA {cuda}; the framework loads the wheel's, the "
                        "base image's is unused weight (pick a matching or a non-CUDA base)"
                    )
    majors = sorted({c.major for c, _ in runtimes})
    if len(majors) > 1:
        out.append(
            "CUDA runtime wheels for several majors: "
            + ", ".join(s for _, s in sorted(runtimes, key=lambda r: r[0]))
        )
    wheels = sorted(
        (p.name, p.version) for p in packages if _CUDNN.match(p.name) or p.name == "nvidia-cudnn"
    )
    base_cudnn = _base_cudnn(base_env)
    if base_cudnn:
        for name, version in wheels:
            if version != base_cudnn:
                out.append(
                    f"two cuDNN copies: the base image has cuDNN {base_cudnn} and {name} "
                    f"{version} is installed; one process loads one libcudnn"
                )
    if len(wheels) > 1:
        out.append(
            "several cuDNN wheels: "
            + ", ".join(f"{n} {v}" for n, v in wheels)
            + "; one process loads one libcudnn"
        )
    return out
