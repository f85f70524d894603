"""Choosing a base image tag from the catalog when the spec names a family, not a tag.

``[base] image = "nvidia/cuda"`` (with an optional ``flavor`` and ``os``) asks reprolock to
pick the tag: the CUDA release the chosen framework builds need (the same major.minor as
the CUDA their wheels bring, so the image holds one CUDA; at least the tested CUDA of a build
that loads CUDA from the system), that the fleet's driver and ``gpu.cuda`` allow, built for
the OS, with a cuDNN variant of the framework's cuDNN major when the flavor asks for one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reprolock.compat import Matrices
from reprolock.compat.frameworks import Build
from reprolock.compat.images import NVIDIA_CUDA, CudaImage
from reprolock.errors import InputError, Problem, Unsatisfiable
from reprolock.model import CudaVersion, ImageRef
from reprolock.spec import BaseSpec, GpuSpec
from reprolock.stack.plan import StackPlan

# Preferred OS when the spec names none: the newest Ubuntu LTS first.
_OS_ORDER = ("ubuntu24.04", "ubuntu22.04", "ubuntu20.04")


@dataclass(frozen=True, slots=True, kw_only=True)
class BaseChoice:
    ref: ImageRef
    image: CudaImage
    why: str


def choose_base(
    base: BaseSpec,
    plans: Sequence[StackPlan],
    gpu: GpuSpec | None,
    m: Matrices,
    *,
    spec_file: str = "reprolock.toml",
) -> BaseChoice:
    """The tag for ``base.image``; `InputError` for a family without a catalog,
    `Unsatisfiable` when no tag fits."""
    assert base.image is not None
    family = ImageRef.parse(base.image)
    if family.repository != NVIDIA_CUDA or family.registry not in ("docker.io", "nvcr.io"):
        raise InputError(
            f'{spec_file}: [base] image "{base.image}": reprolock chooses tags only for '
            "nvidia/cuda (docker.io or nvcr.io).",
            problems=[
                Problem(message="unsupported image family", file=spec_file, key="base.image")
            ],
            hint='Give an explicit ref instead, e.g. ref = "python:3.11-slim-bookworm".',
        )
    builds = [c.verdict.build for p in plans for c in p.choices if c.verdict.build.cuda]
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
