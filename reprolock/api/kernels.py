"""``lock --measure-kernels``: measure the framework builds the tables know no kernels for.

Before a target's stack is planned, its candidate builds whose only fault is unknown
coverage (no arch row: an index variant, a TensorFlow release before the tables' lists) are
measured from their wheels — the best few of each framework, in the solver's order — and
handed to the solver, which then judges them on what they really carry. Measurements are
cached by the wheel's sha256 (`reprolock.api.measure`), so a second lock costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from reprolock.api.measure import PYPI, Measurement, measure
from reprolock.api.network import NetOptions
from reprolock.compat import Matrices
from reprolock.compat.arches import ArchList
from reprolock.compat.frameworks import Build
from reprolock.lock import LockedBase
from reprolock.resolve.python.target import PythonTarget
from reprolock.spec import Spec
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
            arches = (
                chosen[1].arch_list(sources=("measured",))
                if chosen is not None
                else ArchList(sass=(), sources=("measured",))
            )
            isas = sorted({p.isa for p in chosen[1].ptx}) if chosen else []
            arches = ArchList(
                sass=arches.sass,
                ptx=arches.ptx,
                sources=arches.sources,
                ptx_isa=isas[-1] if isas else None,
                measured=result.citation,
            )
            for variant in _variants(build):
                out[(package, str(build.version), variant)] = arches
    return out


def _variants(build: Build) -> tuple[str, ...]:
    """TensorFlow's wheel is the same with or without ``[and-cuda]``."""
    if build.framework == "tensorflow":
        return ("and-cuda", "system-cuda")
    return (build.variant,)
