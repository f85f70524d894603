"""The CUDA stack of a lock: plan the framework builds per target before resolving."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import replace

from packaging.utils import canonicalize_name

from reprolock.api.python_layer import target_id, targets_of
from reprolock.compat import Matrices
from reprolock.compat.arches import ArchList
from reprolock.lock import LockedBase
from reprolock.model import CudaVersion, Platform
from reprolock.resolve.python.target import PythonTarget
from reprolock.spec import Spec
from reprolock.stack.base import BaseChoice, choose_base
from reprolock.stack.judge import Fleet
from reprolock.stack.plan import StackPlan, plan
from reprolock.stack.requests import FrameworkRequest, framework_requests


def platform_key(platform: Platform) -> str:
    return f"{platform.os}/{platform.architecture}"


def fleet_of(
    spec: Spec,
    tid: str,
    target: PythonTarget,
    base: LockedBase | None,
    *,
    base_choosable: bool = False,
) -> Fleet:
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
        base_choosable=base_choosable,
    )


def requests_of(spec: Spec, target: PythonTarget) -> list[FrameworkRequest]:
    """The frameworks the target's (marker-evaluated) requirements name, with their routes."""
    if spec.python is None:
        return []
    env = {**target.marker_environment(), "extra": ""}
    requirements = [
        r for r in spec.python.requirements if r.marker is None or r.marker.evaluate(env)
    ]
    routed = {
        str(canonicalize_name(p)): index.url
        for index in spec.python.indexes
        for p in index.packages
    }
    return framework_requests(requirements, routed)


def plan_target(
    spec: Spec,
    tid: str,
    target: PythonTarget,
    base: LockedBase | None,
    m: Matrices,
    *,
    base_choosable: bool = False,
    measured: Mapping[tuple[str, str, str], ArchList] | None = None,
) -> StackPlan:
    """The stack plan of one target (pure: the tables, the spec, the pinned base, and the
    kernels measured from wheels with ``lock --measure-kernels``)."""
    fleet = fleet_of(spec, tid, target, base, base_choosable=base_choosable)
    if measured:
        fleet = replace(fleet, measured=dict(measured))
    if spec.python is None:
        return StackPlan(fleet=fleet)
    return plan(requests_of(spec, target), fleet, m, pytorch_index=spec.python.pytorch_index)


def plan_targets(
    spec: Spec,
    targets: Sequence[tuple[str, PythonTarget]],
    bases: Mapping[Platform, LockedBase],
    m: Matrices,
    *,
    base_choosable: bool = False,
    measured: Mapping[str, Mapping[tuple[str, str, str], ArchList]] | None = None,
) -> dict[str, StackPlan]:
    return {
        tid: plan_target(
            spec,
            tid,
            target,
            bases.get(target.platform),
            m,
            base_choosable=base_choosable,
            measured=(measured or {}).get(tid),
        )
        for tid, target in targets
    }


def with_chosen_base(spec: Spec, spec_file: str, m: Matrices) -> tuple[Spec, BaseChoice | None]:
    """The spec with ``[base] ref`` filled in from the catalog when it names only a family
    (``image = "nvidia/cuda"``, ``"python"`` or ``"auto"``), and the choice made; the spec
    unchanged otherwise."""
    if spec.base.ref is not None or spec.base.image is None:
        return spec, None
    targets = [(target_id(t), t) for t in targets_of(spec)]
    plans = plan_targets(spec, targets, {}, m, base_choosable=True)
    choice = choose_base(
        spec.base,
        list(plans.values()),
        spec.gpu,
        m,
        spec_file=spec_file,
        python=spec.environment.python,
        platforms=spec.environment.platforms,
    )
    return replace(spec, base=replace(spec.base, ref=choice.ref)), choice
