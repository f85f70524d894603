"""The CUDA stack of a lock: plan the framework builds per target before resolving."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

from packaging.utils import canonicalize_name

from reprolock.compat import Matrices
from reprolock.lock import LockedBase
from reprolock.model import CudaVersion, Platform
from reprolock.resolve.python.target import PythonTarget
from reprolock.spec import Spec
from reprolock.stack.judge import Fleet
from reprolock.stack.plan import StackPlan, plan
from reprolock.stack.requests import framework_requests


def platform_key(platform: Platform) -> str:
    return f"{platform.os}/{platform.architecture}"


def fleet_of(spec: Spec, tid: str, target: PythonTarget, base: LockedBase | None) -> Fleet:
    env = dict(base.env) if base is not None else {}
    base_cuda = None
    with contextlib.suppress(ValueError):
        if env.get("CUDA_VERSION"):
            base_cuda = CudaVersion.parse(env["CUDA_VERSION"])
    cudnn = env.get("NV_CUDNN_VERSION")
    return Fleet(
        target=tid,
        platform=platform_key(target.platform),
        python=target.python.feature,
        gpu=spec.gpu,
        base_cuda=base_cuda,
        base_cudnn=cudnn.split("-")[0] if cudnn else None,
    )


def plan_target(
    spec: Spec, tid: str, target: PythonTarget, base: LockedBase | None, m: Matrices
) -> StackPlan:
    """The stack plan of one target (pure: the tables, the spec and the pinned base)."""
    fleet = fleet_of(spec, tid, target, base)
    if spec.python is None:
        return StackPlan(fleet=fleet)
    env = {**target.marker_environment(), "extra": ""}
    requirements = [
        r for r in spec.python.requirements if r.marker is None or r.marker.evaluate(env)
    ]
    routed = {
        str(canonicalize_name(p)): index.url
        for index in spec.python.indexes
        for p in index.packages
    }
    return plan(
        framework_requests(requirements, routed),
        fleet,
        m,
        pytorch_index=spec.python.pytorch_index,
    )


def plan_targets(
    spec: Spec,
    targets: Sequence[tuple[str, PythonTarget]],
    bases: Mapping[Platform, LockedBase],
    m: Matrices,
) -> dict[str, StackPlan]:
    return {
        tid: plan_target(spec, tid, target, bases.get(target.platform), m)
        for tid, target in targets
    }
