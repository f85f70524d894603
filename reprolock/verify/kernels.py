"""The sections of `verify` that hold the CUDA kernels in the image against the locked
target's GPUs (``cuda.devices``) and its measured extensions (``cuda.extensions``).

Per package whose shared objects carry kernels (`reprolock.inventory.kernels`), the library
that runs on the lock's CUDA is judged against every GPU of the target as the lock judges
a build (`reprolock.stack.extensions.judge_devices`): native SASS of the GPU's family, else
PTX it can JIT — with a driver at least the one the PTX's ISA needs, and the lock promises
only ``driver-min``.

Severity: an error for a framework (torch, tensorflow, jaxlib, the JAX CUDA plugins) and for
an extension the lock measured: the lock vouched that these run every GPU of the fleet, so a
gap means the image holds other files than those judged. A warning for any other package or
file: NVIDIA's own libraries (built per architecture, some loaded only for some GPUs or
lazily, such as the sm_80+ cuSPARSELt torch vendors), and libraries the lock never
measured. What the locked base's own layers hold is the base as locked: not judged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from packaging.utils import canonicalize_name

from reprolock.compat.fatbin import Kernels
from reprolock.compat.frameworks import is_framework_dist
from reprolock.inventory import PackageKernels
from reprolock.inventory.kernels import image_cuda, summarize
from reprolock.lock import CudaStack, LockedTarget
from reprolock.model import ComputeCapability, CudaVersion, DriverVersion
from reprolock.spec.model import GpuDevice
from reprolock.stack.extensions import judge_devices
from reprolock.stack.judge import device_name
from reprolock.verify.context import Context, Finding, Section, Severity, finding


def severity(package: PackageKernels, stack: CudaStack) -> Severity:
    """An error for what the lock vouched runs every GPU: frameworks and measured
    extensions; a warning for the rest."""
    if package.kind != "python":
        return "warning"
    name = canonicalize_name(package.name)
    measured = {canonicalize_name(e.name) for e in stack.extensions}
    if is_framework_dist(name) or name in measured:
        return "error"
    return "warning"


def _devices(stack: CudaStack) -> tuple[GpuDevice, ...]:
    out = []
    for requested, sm in stack.devices:
        with contextlib.suppress(ValueError):
            cap = ComputeCapability.parse(sm)
            out.append(GpuDevice(requested=requested, model=None, capability=cap))
    return tuple(out)


def _cuda(stack: CudaStack, ctx: Context) -> CudaVersion | None:
    """The lock's CUDA (its major.minor), else the image's."""
    parts = stack.toolkit.split(".")
    with contextlib.suppress(ValueError):
        return CudaVersion.parse(".".join(parts[:2]))
    return image_cuda(ctx.inventory.cuda)


def _driver(stack: CudaStack) -> DriverVersion | None:
    try:
        return DriverVersion.parse(stack.driver_min)
    except ValueError:
        return None


def wanted(target: LockedTarget) -> bool:
    """Whether these sections judge anything for ``target`` (GPUs or measured extensions
    in its CUDA stack): if not, the image's shared objects need not be scanned."""
    stack = target.cuda
    return stack is not None and bool(_devices(stack) or stack.extensions)


def _scanned(ctx: Context) -> tuple[PackageKernels, ...]:
    found = ctx.inventory.kernels
    if found is None:  # `wanted` said yes, and the image was read without the scan
        raise RuntimeError("verify: the image was read without its CUDA kernels")
    return found


def gpu_kernels(ctx: Context) -> Iterator[Finding]:
    """``gpu-kernels``: a GPU of the target that a package has neither SASS of its family
    nor PTX for; ``gpu-jit-driver``: one it runs only by JIT-compiling PTX whose ISA needs a
    newer driver than the lock's ``driver-min``."""
    stack = ctx.target.cuda
    m = ctx.matrices
    if stack is None or m is None:
        return
    devices = _devices(stack)
    if not devices:
        return
    cuda, driver = _cuda(stack, ctx), _driver(stack)
    for package in _scanned(ctx):
        if not any(ctx.after_base(lib.layer) for lib in package.libraries):
            continue
        library, kernels = summarize(package.name, package.libraries, cuda)
        path = library or ", ".join(lib.path for lib in package.libraries)
        layer = next((lib.layer for lib in package.libraries if lib.path == library), None)
        where = path if layer is None else f"layer {layer} {path}"
        title = package.name if package.version is None else f"{package.name} {package.version}"
        level = severity(package, stack)
        for run in judge_devices(kernels.arch_list(), devices, m):
            device = run.device
            name = device_name(device.requested, device.capability)
            subject = f"{package.name}:{device.requested}"
            if run.coverage.how is None:
                yield finding(
                    "gpu-kernels",
                    subject,
                    f"kernels for {name}",
                    kernels.describe(),
                    level,
                    f"{title}: {path} has neither SASS of the {name} family nor PTX it can "
                    f"JIT (it carries {kernels.describe()})",
                    where,
                )
            elif run.jit_driver is not None and driver is not None:
                need, why = run.jit_driver
                if driver < need:
                    yield finding(
                        "gpu-jit-driver",
                        subject,
                        f"driver >= {need}",
                        f"driver-min {driver}",
                        level,
                        f"{title}: {path} runs {name} only by JIT-compiling its PTX, which "
                        f"needs driver >= {need} ({why}); the lock's driver-min is {driver} "
                        f"(it carries {kernels.describe()})",
                        where,
                    )


def _describe(sass: list[str], ptx: list[str], isa: str | None) -> str:
    """``sm_80 sm_90, PTX compute_90 (ISA 8.5)``, as the lock lists an extension."""
    text = " ".join(sass) or "no native kernels"
    if ptx:
        text += ", PTX " + " ".join(ptx) + (f" (ISA {isa})" if isa else "")
    return text


def _listed(kernels: Kernels) -> tuple[list[str], list[str], str | None]:
    """SASS, PTX and the highest PTX ISA, written as the lock writes an extension's."""
    arches = kernels.arch_list()
    ptx = [f"compute_{c.major}{c.minor}{c.suffix}" for c in arches.ptx]
    return [c.sm for c in arches.sass], ptx, arches.ptx_isa


def extension_kernels(ctx: Context) -> Iterator[Finding]:
    """``extension-kernels``: an extension the lock measured (``cuda.extensions``) whose
    library in the image carries other kernels than the lock recorded (or is gone)."""
    stack = ctx.target.cuda
    if stack is None or not stack.extensions:
        return
    envs = {e.path for e in ctx.locked_envs()}
    installed = {
        canonicalize_name(d.name)
        for e in ctx.inventory.python_envs
        if e.path in envs
        for d in e.dists
    }
    carrying = {
        canonicalize_name(p.name): p for p in _scanned(ctx) if p.kind == "python" and p.env in envs
    }
    for ext in stack.extensions:
        name = canonicalize_name(ext.name)
        if name not in installed:
            continue  # python-missing says so
        package = carrying.get(name)
        library = next(
            (
                lib
                for lib in (package.libraries if package else ())
                if lib.path.endswith("/" + ext.library.lstrip("/"))
            ),
            None,
        )
        found = _listed(library.kernels) if library is not None else None
        locked = (list(ext.arches), list(ext.ptx), ext.ptx_isa)
        if found is not None and (
            (set(found[0]), set(found[1]), found[2]) == (set(locked[0]), set(locked[1]), locked[2])
        ):
            continue
        expected = _describe(*locked)
        actual = "no CUDA kernels" if found is None else _describe(*found)
        shown = ext.library if library is None else library.path
        yield finding(
            "extension-kernels",
            ext.name,
            expected,
            actual,
            "error",
            f"{ext.name} {ext.version}: the lock measured {expected} in {ext.library} "
            f"({ext.measured}); the image's {shown} carries {actual}",
            None if library is None else f"layer {library.layer} {library.path}",
        )


SECTIONS: tuple[Section, ...] = (gpu_kernels, extension_kernels)
