"""``lock --measure-kernels``: measure the framework builds the tables know no kernels for,
and the CUDA extensions the lock installs.

Before a target's stack is planned, its candidate builds whose only fault is unknown
coverage (no arch row: an index variant, a TensorFlow release before the tables' lists) are
measured from their wheels — the best few of each framework, in the solver's order — and
handed to the solver, which then judges them on what they really carry. Measurements are
cached by the wheel's sha256 (`reprolock.api.measure`), so a second lock costs nothing.

After resolving, every locked binary wheel that builds on a framework or on NVIDIA's
libraries (flash-attn, bitsandbytes, xformers, torchvision ...) is measured the same way; its
kernels and what runs each GPU of the fleet go to the lock's ``cuda.extensions``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from packaging.utils import canonicalize_name, parse_wheel_filename

from reprolock.api.measure import PYPI, Measurement, Measurer, measure
from reprolock.api.network import NetOptions
from reprolock.compat import Matrices
from reprolock.compat.arches import ArchList
from reprolock.compat.fatbin import Kernels
from reprolock.compat.frameworks import Build, is_framework_dist
from reprolock.lock import ExtensionKernels, LockedBase, PythonPackage, Wheel
from reprolock.model import CudaVersion
from reprolock.resolve.python.index import DistFile
from reprolock.resolve.python.target import PythonTarget
from reprolock.spec import Spec
from reprolock.spec.model import GpuSpec
from reprolock.stack.extensions import judge_extension, library_for
from reprolock.stack.judge import UNKNOWN
from reprolock.stack.plan import candidates

Key = tuple[str, str, str]
PER_FRAMEWORK = 3  # builds measured per framework and target, best first

Measure = Callable[..., Measurement]


def default_index(spec: Spec) -> str:
    """The index the spec installs unrouted packages from (PyPI unless another is default)."""
    indexes = spec.python.indexes if spec.python else ()
    return next((i.url for i in indexes if i.default), PYPI)


def wheel_of(build: Build, spec: Spec, m: Matrices) -> tuple[str, str] | None:
    """The pin and index of the wheel a build installs, or None (nothing to measure)."""
    if build.framework == "torch":
        if build.variant == "pypi":
            return f"torch=={build.version}", default_index(spec)
        if build.index and build.index != "cpu":
            base = (spec.python.pytorch_index if spec.python else None) or m.torch.index_url
            return f"torch=={build.version}+{build.index}", f"{base.rstrip('/')}/{build.index}"
        return None
    if build.framework == "tensorflow" and build.cuda is not None:
        return f"tensorflow=={build.version}", default_index(spec)
    return None


def measure_unknown(
    spec: Spec,
    tid: str,
    target: PythonTarget,
    base: LockedBase | None,
    m: Matrices,
    net: NetOptions,
    *,
    measure_wheel: Measure = measure,
) -> dict[Key, ArchList]:
    """Arch lists measured for the target's candidate builds of unknown coverage."""
    from reprolock.api.stack_layer import fleet_of, requests_of  # noqa: PLC0415

    if spec.gpu is None or not spec.gpu.devices:
        return {}
    # Without a pinned base (one reprolock chooses), the base is given the benefit: what to
    # measure does not depend on it.
    fleet = fleet_of(spec, tid, target, base, base_choosable=base is None)
    out: dict[Key, ArchList] = {}
    for request in requests_of(spec, target):
        todo = [
            v.build
            for v in candidates(request, fleet, m)
            if v.reasons and all(UNKNOWN in r for r in v.reasons)
        ][:PER_FRAMEWORK]
        for build in todo:
            found = wheel_of(build, spec, m)
            if found is None:
                continue
            pin, index = found
            result = measure_wheel(
                pin, platform=target.platform, python=target.python, net=net, index=index
            )
            package = build.framework
            chosen = result.primary
            kernels = chosen[1] if chosen is not None else Kernels()
            arches = kernels.arch_list(sources=("measured",), measured=result.citation)
            for variant in _variants(build):
                out[(package, str(build.version), variant)] = arches
    return out


def _variants(build: Build) -> tuple[str, ...]:
    """TensorFlow's wheel is the same with or without ``[and-cuda]``."""
    if build.framework == "tensorflow":
        return ("and-cuda", "system-cuda")
    return (build.variant,)


# -- CUDA extensions -----------------------------------------------------------------------

# NVIDIA's own libraries (built for every architecture of their CUDA); the frameworks'
# kernels are described by the lock's framework arch list.
_NVIDIA = ("nvidia-", "cuda-")
_BUILDS_ON = frozenset({"torch", "tensorflow", "jax", "jaxlib"})


def _binary_wheel(package: PythonPackage) -> Wheel | None:
    """The package's first locked wheel that can carry shared objects (not ``*-any``)."""
    for wheel in package.wheels:
        tags = parse_wheel_filename(wheel.filename)[3]
        if any(t.platform != "any" for t in tags):
            return wheel
    return None


def extension_candidates(
    packages: tuple[PythonPackage, ...],
) -> Iterator[tuple[PythonPackage, Wheel]]:
    """Locked packages that may carry CUDA kernels of their own: binary wheels that depend
    on a framework or on NVIDIA's CUDA wheels, or whose version names a CUDA (``+cu124``)."""
    for package in sorted(packages, key=lambda p: canonicalize_name(p.name)):
        name = canonicalize_name(package.name)
        if is_framework_dist(name) or name.startswith(_NVIDIA):
            continue
        wheel = _binary_wheel(package)
        if wheel is None or wheel.sha256 is None:
            continue
        deps = {canonicalize_name(d) for d in package.dependencies}
        local = package.version.partition("+")[2]
        if deps & _BUILDS_ON or any(d.startswith(_NVIDIA) for d in deps) or local.startswith("cu"):
            yield package, wheel


@dataclass(frozen=True, slots=True, kw_only=True)
class MeasuredExtensions:
    extensions: tuple[ExtensionKernels, ...]
    problems: tuple[str, ...]  # "flash-attn 2.8.3 has no kernels for sm_70 (V100) ..."


def measure_extensions(
    packages: tuple[PythonPackage, ...],
    target: PythonTarget,
    cuda: CudaVersion | None,
    gpu: GpuSpec,
    m: Matrices,
    net: NetOptions,
) -> MeasuredExtensions:
    """Measure the target's CUDA extensions and judge each against the fleet's GPUs."""
    found: list[ExtensionKernels] = []
    problems: list[str] = []
    measurers: dict[str, Measurer] = {}
    with contextlib.ExitStack() as stack:
        for package, wheel in extension_candidates(packages):
            measurer = measurers.get(package.index)
            if measurer is None:
                measurer = stack.enter_context(Measurer(package.index, net))
                measurers[package.index] = measurer
            file = DistFile(
                filename=wheel.filename,
                url=wheel.url,
                index=package.index,
                sha256=wheel.sha256,
                size=wheel.size,
            )
            result = measurer.measure(file, target)
            chosen = library_for(result.libraries, package.name, cuda)
            if chosen is None:
                if any(not k.empty for k in result.libraries.values()):
                    problems.append(
                        f"{package.name} {package.version} carries no library for CUDA {cuda} "
                        f"(it has {', '.join(sorted(result.libraries))})"
                    )
                continue  # no kernels at all: not a CUDA extension
            library, kernels = chosen
            arches = kernels.arch_list(sources=("measured",), measured=result.citation)
            verdict = judge_extension(arches, gpu, m)
            problems.extend(f"{package.name} {package.version} {p}" for p in verdict.problems)
            found.append(
                ExtensionKernels(
                    name=package.name,
                    version=package.version,
                    library=library,
                    arches=tuple(c.sm for c in arches.sass),
                    ptx=tuple(f"compute_{c.major}{c.minor}{c.suffix}" for c in arches.ptx),
                    ptx_isa=arches.ptx_isa,
                    measured=result.citation,
                    coverage=verdict.coverage,
                )
            )
    return MeasuredExtensions(extensions=tuple(found), problems=tuple(problems))


def carried_extensions(
    old: tuple[ExtensionKernels, ...],
    packages: tuple[PythonPackage, ...],
    gpu: GpuSpec,
    m: Matrices,
) -> MeasuredExtensions:
    """The previous lock's measurements of files the new lock still installs (the same
    name, version and sha256), judged again against the fleet as it is now."""
    hashes = {
        (canonicalize_name(p.name), p.version): {w.sha256 for w in p.wheels if w.sha256}
        for p in packages
    }
    kept: list[ExtensionKernels] = []
    problems: list[str] = []
    for ext in old:
        sha = ext.measured.rpartition(" sha256:")[2]
        if sha not in hashes.get((canonicalize_name(ext.name), ext.version), set()):
            continue
        arches = ArchList.parse(
            ext.arches,
            [p.replace("compute_", "sm_") for p in ext.ptx],
            ptx_isa=ext.ptx_isa,
            measured=ext.measured,
        )
        verdict = judge_extension(arches, gpu, m)
        problems.extend(f"{ext.name} {ext.version} {p}" for p in verdict.problems)
        kept.append(replace(ext, coverage=verdict.coverage))
    return MeasuredExtensions(extensions=tuple(kept), problems=tuple(problems))
