"""Does one framework build run on a target? Every reason it does not, and what to know."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from reprolock.compat import Matrices
from reprolock.compat.arches import ArchList, coverage
from reprolock.compat.cuda import DriverNeed
from reprolock.compat.frameworks import Build
from reprolock.model import ComputeCapability, CudaVersion, DriverVersion
from reprolock.spec import GpuSpec, UnknownCoverage

UNKNOWN = "kernels unknown"
WAYS_OUT = (
    "measure the wheels' kernels with `reprolock lock --measure-kernels`, or accept unknown "
    'coverage knowingly with [gpu] unknown-coverage = "warn"'
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Fleet:
    """What a target must run on: its platform and Python, the GPUs and driver, and the
    CUDA the base image brings."""

    target: str  # the target id, for messages
    platform: str  # "linux/amd64"
    python: str  # "3.11"
    gpu: GpuSpec | None
    base_cuda: CudaVersion | None = None
    base_cudnn: str | None = None
    base_choosable: bool = False  # [base] names the nvidia/cuda family: reprolock picks the tag
    # kernels measured from the wheels (lock --measure-kernels), for builds the tables lack:
    # (framework, version, variant) → arch list
    measured: Mapping[tuple[str, str, str], ArchList] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    build: Build
    python: tuple[str, ...]
    reasons: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    coverage: tuple[tuple[str, str], ...] = field(default=())  # (device, how it runs)

    @property
    def ok(self) -> bool:
        return not self.reasons


def span(pythons: tuple[str, ...]) -> str:
    if not pythons:
        return "none"
    return pythons[0] if len(pythons) == 1 else f"{pythons[0]}-{pythons[-1]}"


def device_name(requested: str, cap: ComputeCapability) -> str:
    return cap.sm if requested.lower() in (cap.sm, str(cap)) else f"{cap.sm} ({requested})"


def _dropped(build: Build, cap: ComputeCapability, m: Matrices) -> str | None:
    """Why a build cannot carry kernels for ``cap`` whatever its arch list: its CUDA
    toolkit no longer compiles for that architecture (CUDA 13 dropped sm_50-sm_72)."""
    arch = m.gpus.architecture(cap)
    cuda = build.cuda
    if arch is None or arch.dropped_in is None or cuda is None:
        return None
    if cuda.parts[:2] < arch.dropped_in.parts[:2]:
        return None
    return (
        f"has no kernels for {cap.sm}: CUDA {cuda} toolkits cannot compile for {arch.name} "
        f"(dropped in CUDA {arch.dropped_in})"
    )


def jit_floor(
    arches: ArchList, strict: DriverNeed | None, m: Matrices
) -> tuple[DriverVersion, str] | None:
    """The driver PTX JIT needs: that of the first CUDA loading the PTX's ISA when the ISA
    is known (measured), else the build toolkit's own (strict) driver."""
    cuda = m.ptx.cuda_for(arches.ptx_isa)
    if cuda is not None:
        with contextlib.suppress(ValueError):
            need = m.cuda.need(cuda, "strict")
            return need.driver, f"PTX ISA {arches.ptx_isa} first loads with CUDA {cuda}"
    if strict is None:
        return None
    return strict.driver, "the build's CUDA"


def judge(
    build: Build,
    pythons: tuple[str, ...],
    fleet: Fleet,
    m: Matrices,
    *,
    arm64: bool = True,
    cpu_requested: bool = False,
) -> Verdict:
    """Judge ``build`` (whose wheels exist for ``pythons``) against ``fleet``.

    A CPU build the requirements ask for by name (``cpu_requested``: tensorflow-cpu,
    jax[cpu], torch routed to the cpu index) fits a GPU target; it just leaves the GPUs
    unused, which the verdict notes."""
    reasons: list[str] = []
    notes: list[str] = []
    cov: list[tuple[str, str]] = []
    if fleet.python not in pythons:
        reasons.append(f"has no wheels for Python {fleet.python} (it ships {span(pythons)})")
    if not arm64 and fleet.platform == "linux/arm64":
        reasons.append("has no linux/arm64 wheels")
    gpu = fleet.gpu
    if gpu is None:
        if build.cuda is not None and not build.needs_system_cuda:
            text = (
                f"brings CUDA {build.cuda} libraries, which a CPU-only target (no [gpu]) never uses"
            )
            (reasons if build.framework == "torch" else notes).append(text)
        return Verdict(build=build, python=pythons, reasons=tuple(reasons), notes=tuple(notes))
    if build.cuda is None:
        if cpu_requested:
            notes.append("a CPU build, as requested: it runs on the CPU, the GPUs are not used")
            cov.extend((d.requested, "CPU build: GPU not used") for d in gpu.devices)
            return Verdict(
                build=build,
                python=pythons,
                reasons=tuple(reasons),
                notes=tuple(notes),
                coverage=tuple(cov),
            )
        if build.framework == "jax" and build.variant.startswith("cuda"):
            reasons.append(f"has no jax-{build.variant}-plugin release on PyPI")
        elif build.framework == "jax":
            reasons.append(
                "has no CUDA plugin (runs on CPU only); ask for jax[cuda12] or jax[cuda13]"
            )
        elif build.framework == "tensorflow" and fleet.platform == "linux/arm64":
            reasons.append("is a CPU build on linux/arm64 (its arm64 wheels carry no CUDA kernels)")
        else:
            reasons.append("is a CPU build")
        return Verdict(build=build, python=pythons, reasons=tuple(reasons))
    cuda = build.cuda
    if gpu.cuda is not None and not gpu.cuda.contains(str(cuda), prereleases=True):
        reasons.append(f"uses CUDA {cuda}, outside gpu.cuda {gpu.cuda}")
    if gpu.cudnn is not None and build.cudnn is not None:
        probe = build.cudnn if "." in build.cudnn else f"{build.cudnn}.99"
        if not gpu.cudnn.contains(probe, prereleases=True):
            reasons.append(f"uses cuDNN {build.cudnn}, outside gpu.cudnn {gpu.cudnn}")
    policy = gpu.compat.value
    need: DriverNeed | None = None
    strict: DriverNeed | None = None
    try:
        need = m.cuda.need(cuda, "minor" if policy == "minor" else "strict")
        strict = m.cuda.need(cuda, "strict")
    except ValueError as exc:
        notes.append(str(exc))
    if need is not None and gpu.driver is not None and gpu.driver < need.driver:
        reasons.append(
            f"uses CUDA {cuda}, which needs driver >= {need.driver} ({policy} policy); "
            f"the fleet's oldest is {gpu.driver}"
        )
    if build.needs_system_cuda:
        base = fleet.base_cuda
        if base is None and not fleet.base_choosable:
            reasons.append(
                f"loads CUDA {cuda} and cuDNN {build.cudnn} from the system, and the base image "
                "has none"
            )
        elif base is not None and (base.major != cuda.major or base.parts[:2] < cuda.parts[:2]):
            reasons.append(
                f"needs CUDA {cuda.major}.x >= {cuda} in the base image, which has {base}"
            )
    arches = build.arches
    if arches is None:
        arches = fleet.measured.get((build.framework, str(build.version), build.variant))
    warn = gpu.unknown_coverage is UnknownCoverage.WARN
    if arches is None and gpu.devices and build.min_capability is None:
        notes.append(
            "which GPUs it has kernels for is neither in reprolock's tables nor measured"
            + (' (accepted: [gpu] unknown-coverage = "warn")' if warn else "")
        )
    for device in gpu.devices:
        cap = device.capability
        name = device_name(device.requested, cap)
        if build.min_capability is not None:
            least = ComputeCapability.parse(build.min_capability)
            if (cap.major, cap.minor) < (least.major, least.minor):
                reasons.append(
                    f"needs compute capability >= {least}; {name} is {cap.major}.{cap.minor}"
                )
            else:
                cov.append((device.requested, f"supported (>= {least})"))
            continue
        if arches is None:
            dropped = _dropped(build, cap, m)
            if dropped is not None:  # a fact of the toolkit, even without a row
                cov.append((device.requested, "no kernels"))
                reasons.append(dropped)
                continue
            cov.append((device.requested, "unknown"))
            if not warn:  # fail closed: a build is chosen only when it runs on every GPU
                reasons.append(f"{UNKNOWN} for {name}")
            continue
        found = coverage(arches, cap)
        cov.append((device.requested, found.describe()))
        if found.how is None:
            reasons.append(f"has no kernels for {name}")
        elif found.how == "ptx":
            jit = (
                f"runs {name} only by JIT-compiling PTX compute_{found.via.major}{found.via.minor}"
                if found.via
                else ""
            )
            floor = jit_floor(arches, strict, m)
            if floor is None:
                continue
            driver, why = floor
            if gpu.driver is not None and gpu.driver < driver:
                reasons.append(
                    f"{jit}, which needs driver >= {driver} ({why}; minor-version "
                    "compatibility does not cover PTX JIT)"
                )
            else:
                notes.append(f"{jit} (slow first start; needs driver >= {driver}, {why})")
    # What the tables are unsure of (PTX, an inferred list) matters only to a GPU without
    # native kernels in the list: a fleet that runs natively everywhere is not told.
    if (
        arches is not None
        and arches.unconfirmed
        and any(not how.startswith("native") for _, how in cov)
    ):
        pin = f"{build.framework}=={build.version}"
        if build.index and build.framework == "torch":
            pin += f"+{build.index} --index {m.torch.index_url.rstrip('/')}/{build.index}"
        notes.append(
            f"its arch list is not confirmed: {arches.unconfirmed}; `reprolock matrix measure "
            f"{pin}` measures the wheel's kernels"
        )
    return Verdict(
        build=build,
        python=pythons,
        reasons=tuple(reasons),
        notes=tuple(dict.fromkeys(notes)),
        coverage=tuple(cov),
    )
