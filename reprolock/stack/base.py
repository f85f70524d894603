"""Choosing a base image tag from the catalog when the spec names a family, not a tag.

``[base] image = "nvidia/cuda"`` (with an optional ``flavor`` and ``os``) asks reprolock to
pick the tag: the CUDA release the chosen framework builds need (the same major.minor as
the CUDA their wheels bring, so the image holds one CUDA; at least the tested CUDA of a build
that loads CUDA from the system), that the fleet's driver and ``gpu.cuda`` allow, built for
the OS, with a cuDNN variant of the framework's cuDNN major when the flavor asks for one.

``image = "python"`` picks the official ``python:X.Y-slim-<suite>`` tag (``os`` names the
Debian suite; the newest by default).  ``image = "auto"`` picks that python image when every
CUDA library the stack loads comes from wheels (torch's PyPI and ``+cuXYZ`` builds,
``tensorflow[and-cuda]``, the JAX plugins) — one CUDA copy in the image instead of two —
and nvidia/cuda only when the stack needs system CUDA (TensorFlow without ``[and-cuda]``,
``jax[cuda12-local]``) or the flavor asks for NVIDIA's libraries or compilers (``runtime``,
``devel``, ``cudnn-*``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reprolock.compat import Matrices
from reprolock.compat.frameworks import Build
from reprolock.compat.images import NVIDIA_CUDA, CudaImage
from reprolock.errors import InputError, Problem, Unsatisfiable
from reprolock.model import CudaVersion, ImageRef, Platform, PythonVersion
from reprolock.spec import BaseSpec, GpuSpec
from reprolock.stack.plan import StackPlan

# Preferred OS when the spec names none: the newest Ubuntu LTS first.
_OS_ORDER = ("ubuntu24.04", "ubuntu22.04", "ubuntu20.04")
AUTO = "auto"
# flavors only nvidia/cuda has: NVIDIA's math libraries, cuDNN or compilers from the system
_SYSTEM_FLAVORS = ("runtime", "devel", "cudnn-runtime", "cudnn-devel")


@dataclass(frozen=True, slots=True, kw_only=True)
class BaseChoice:
    ref: ImageRef
    image: CudaImage | None  # the nvidia/cuda release; None for a python image
    why: str
    instead_of: ImageRef | None = None  # what image = "nvidia/cuda" would have taken


def choose_base(
    base: BaseSpec,
    plans: Sequence[StackPlan],
    gpu: GpuSpec | None,
    m: Matrices,
    *,
    spec_file: str = "reprolock.toml",
    python: PythonVersion | None = None,
    platforms: Sequence[Platform] = (),
) -> BaseChoice:
    """The tag for ``base.image``; `InputError` for a family without a catalog,
    `Unsatisfiable` when no tag fits."""
    assert base.image is not None
    builds = [c.verdict.build for p in plans for c in p.choices if c.verdict.build.cuda]
    if base.image == AUTO:
        return _choose_auto(base, builds, gpu, m, spec_file, python, platforms)
    family = ImageRef.parse(base.image)
    if _is_python(family, m):
        return _choose_python(base, m, spec_file, python, platforms, why="[base] image = python")
    if family.repository != NVIDIA_CUDA or family.registry not in ("docker.io", "nvcr.io"):
        raise InputError(
            f'{spec_file}: [base] image "{base.image}": reprolock chooses tags only for '
            'nvidia/cuda (docker.io or nvcr.io), "python" and "auto".',
            problems=[
                Problem(message="unsupported image family", file=spec_file, key="base.image")
            ],
            hint='Give an explicit ref instead, e.g. ref = "python:3.11-slim-bookworm".',
        )
    return _choose_cuda(base, builds, gpu, m, spec_file, family)


def _is_python(family: ImageRef, m: Matrices) -> bool:
    ours = ImageRef.parse(m.python.images.repository)
    return (family.registry, family.repository) == (ours.registry, ours.repository)


def _system_cuda(base: BaseSpec, builds: Sequence[Build]) -> str | None:
    """Why the stack needs CUDA from the base image; None when wheels bring all of it."""
    system = [b.label for b in builds if b.needs_system_cuda]
    if system:
        return f"{', '.join(system)} load{'s' if len(system) == 1 else ''} CUDA from the system"
    if base.flavor in _SYSTEM_FLAVORS:
        return f'[base] flavor = "{base.flavor}" asks for NVIDIA\'s libraries from the system'
    return None


def _choose_auto(
    base: BaseSpec,
    builds: Sequence[Build],
    gpu: GpuSpec | None,
    m: Matrices,
    spec_file: str,
    python: PythonVersion | None,
    platforms: Sequence[Platform],
) -> BaseChoice:
    cuda_family = ImageRef.parse(NVIDIA_CUDA)
    system = _system_cuda(base, builds)
    if system is not None:
        choice = _choose_cuda(base, builds, gpu, m, spec_file, cuda_family)
        return BaseChoice(ref=choice.ref, image=choice.image, why=f"{system}; {choice.why}")
    if gpu is None:
        why = "a CPU-only target needs no CUDA in the base"
    elif builds:
        why = f"every CUDA library comes from wheels ({', '.join(b.label for b in builds)})"
    else:
        why = "no framework loads CUDA from the system (CUDA, if any, comes from wheels)"
    python_base = BaseSpec(image=m.python.images.repository, flavor=None, os=base.os)
    choice = _choose_python(python_base, m, spec_file, python, platforms, why=why)
    instead = None
    if gpu is not None:
        try:
            cuda_base = BaseSpec(image=NVIDIA_CUDA, flavor=None, os=None)
            instead = _choose_cuda(cuda_base, builds, gpu, m, spec_file, cuda_family).ref
        except (InputError, Unsatisfiable):
            instead = None
    return BaseChoice(ref=choice.ref, image=None, why=choice.why, instead_of=instead)


def _choose_python(
    base: BaseSpec,
    m: Matrices,
    spec_file: str,
    python: PythonVersion | None,
    platforms: Sequence[Platform],
    *,
    why: str,
) -> BaseChoice:
    images = m.python.images
    if base.flavor not in (None, "slim"):
        raise InputError(
            f'{spec_file}: [base] flavor "{base.flavor}": the python images are chosen in '
            "their slim variant.",
            problems=[Problem(message="unknown flavor", file=spec_file, key="base.flavor")],
            hint='Drop flavor (or write "slim"), or give an explicit ref.',
        )
    suite = images.suite(base.os)
    if suite is None:
        names = ", ".join(f"{s.os} ({s.suite})" for s in images.suites)
        raise InputError(
            f'{spec_file}: [base] os "{base.os}" is not a Debian suite of the python images.',
            problems=[Problem(message="unknown suite", file=spec_file, key="base.os")],
            hint=f"Use one of {names}, or give an explicit ref.",
        )
    assert python is not None, "the environment's Python chooses the python image"
    if python.feature not in suite.python:
        raise Unsatisfiable(
            f"no python:{python.feature}-slim-{suite.suite} image: the official python images "
            f"on {suite.suite} are built for Python {', '.join(suite.python)}.",
            hint="Target one of those Pythons, or give an explicit [base] ref.",
        )
    missing = [str(p) for p in platforms if p not in suite.platforms]
    if missing:
        raise Unsatisfiable(
            f"python:{python.feature}-slim-{suite.suite} is not built for {', '.join(missing)} "
            f"(it is for {', '.join(str(p) for p in suite.platforms)}).",
            hint="Drop those platforms, choose another [base] os, or give an explicit ref.",
        )
    family = ImageRef.parse(images.repository)
    tag = images.tag_for(str(python), suite)
    ref = ImageRef(registry=family.registry, repository=family.repository, tag=tag)
    return BaseChoice(ref=ref, image=None, why=why)


def _choose_cuda(
    base: BaseSpec,
    builds: Sequence[Build],
    gpu: GpuSpec | None,
    m: Matrices,
    spec_file: str,
    family: ImageRef,
) -> BaseChoice:
    system = [b for b in builds if b.needs_system_cuda]
    flavor = base.flavor or ("cudnn-runtime" if system else "base")
    cudnn = flavor.startswith("cudnn-")
    kind = flavor.removeprefix("cudnn-")
    if kind not in m.images.flavors:
        raise InputError(
            f'{spec_file}: [base] flavor "{flavor}" is not an nvidia/cuda flavor.',
            problems=[Problem(message="unknown flavor", file=spec_file, key="base.flavor")],
            hint=f"Use one of {', '.join(m.images.flavors)}, or cudnn-runtime / cudnn-devel.",
        )
    want = _wanted_cuda(builds)
    cudnn_major = next((b.cudnn_major for b in builds if b.cudnn_major is not None), None)
    rejected: list[str] = []
    for image in reversed(m.images.cuda):
        reason = _reject(image, want, system, gpu, m)
        if (
            reason is None
            and cudnn
            and cudnn_major is not None
            and image.cudnn
            and int(image.cudnn.split(".")[0]) != cudnn_major
        ):
            reason = f"its cuDNN {image.cudnn} is not cuDNN {cudnn_major}"
        if reason is None:
            os = _os(image, base.os, cudnn=cudnn)
            if os is None:
                wanted = base.os or "an Ubuntu"
                reason = f"has no {'cudnn ' if cudnn else ''}image for {wanted}"
            else:
                tag = image.tag(kind, os, cudnn=cudnn)
                ref = ImageRef(registry=family.registry, repository=family.repository, tag=tag)
                why = (
                    f"CUDA {image.cuda} matches {', '.join(b.label for b in builds)}"
                    if builds
                    else f"the newest CUDA the fleet runs ({image.cuda})"
                )
                return BaseChoice(ref=ref, image=image, why=why)
        rejected.append(f"nvidia/cuda {image.cuda}: {reason}")
    raise Unsatisfiable(
        "no nvidia/cuda tag fits the stack"
        + (f" ({', '.join(b.label for b in builds)})" if builds else "")
        + ":",
        problems=[Problem(message=r) for r in rejected[:10]],
        hint="Loosen [base] flavor/os or the [gpu] constraints, or give an explicit ref.",
    )


def _wanted_cuda(builds: Sequence[Build]) -> CudaVersion | None:
    """The CUDA the image should carry: that of the wheels (one CUDA in the image), else the
    highest a system-CUDA build was tested with."""
    wheels = [b.cuda for b in builds if b.cuda is not None and not b.needs_system_cuda]
    system = [b.cuda for b in builds if b.cuda is not None and b.needs_system_cuda]
    pool = wheels or system
    return max(pool) if pool else None


def _reject(
    image: CudaImage,
    want: CudaVersion | None,
    system: Sequence[Build],
    gpu: GpuSpec | None,
    m: Matrices,
) -> str | None:
    cuda = image.cuda
    if want is not None:
        if system:
            if cuda.major != want.major or cuda.parts[:2] < want.parts[:2]:
                return f"the framework needs CUDA {want.major}.x >= {want}"
        elif cuda.parts[:2] != want.parts[:2]:
            return f"the framework's wheels bring CUDA {want}"
    if gpu is not None:
        if gpu.cuda is not None and not gpu.cuda.contains(str(cuda), prereleases=True):
            return f"outside gpu.cuda {gpu.cuda}"
        if gpu.driver is not None:
            try:
                need = m.cuda.need(cuda, gpu.compat.value)
            except ValueError as exc:
                return str(exc)
            if gpu.driver < need.driver:
                return f"needs driver >= {need.driver}; the fleet's oldest is {gpu.driver}"
    return None


def _os(image: CudaImage, wanted: str | None, *, cudnn: bool) -> str | None:
    def ok(os: str) -> bool:
        return os in image.os and (not cudnn or image.has_cudnn(os))

    if wanted is not None:
        return wanted if ok(wanted) else None
    return next((os for os in _OS_ORDER if ok(os)), None)
