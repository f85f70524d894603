"""The stack solver: per target, pick the framework builds that run on the fleet.

For every framework the requirements name (torch, tensorflow, jax) it judges each build of
each release the requirement admits — the PyPI wheel, the PyTorch index variants, CPU builds,
TensorFlow with or without ``[and-cuda]``, a JAX CUDA plugin — against the target's Python,
GPUs (kernels or PTX for every device), driver floor, CUDA/cuDNN constraints and base image.
Then it picks one build per framework (newest release first; for torch the PyPI wheel over a
routed index variant, newer CUDA over older) such that the frameworks agree on cuDNN and the
CUDA major, and hands the Python resolver what enforces the choice: version exclusions,
the route of torch to its variant index, and bounds on the CUDA runtime and cuDNN wheels.
When nothing fits it says why, with the nearest fixes.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from reprolock.compat import Matrices
from reprolock.compat.frameworks import ARM64, Build, series_of
from reprolock.compat.requires import Requires, conflicts
from reprolock.errors import Problem, Unsatisfiable
from reprolock.model import CudaVersion, DriverVersion
from reprolock.stack.judge import UNKNOWN, WAYS_OUT, Fleet, Verdict, judge, span
from reprolock.stack.requests import TORCH_FAMILY, FrameworkRequest

MAX_PER_FRAMEWORK = 120
CUDA_RUNTIMES = ("nvidia-cuda-runtime-cu11", "nvidia-cuda-runtime-cu12", "nvidia-cuda-runtime")
CUDA_TOOLKIT = "cuda-toolkit"
CUDNN_WHEELS = ("nvidia-cudnn-cu11", "nvidia-cudnn-cu12", "nvidia-cudnn-cu13")


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    name: str
    url: str
    packages: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Choice:
    request: FrameworkRequest
    verdict: Verdict
    allowed: tuple[Version, ...]  # known releases whose build of the chosen kind fits


@dataclass(frozen=True, slots=True, kw_only=True)
class StackPlan:
    fleet: Fleet
    choices: tuple[Choice, ...] = ()
    considered: tuple[Verdict, ...] = ()
    constraints: Mapping[str, SpecifierSet] = field(default_factory=dict)
    reasons: Mapping[str, str] = field(default_factory=dict)  # why each constraint holds
    # how a constraint reads for people where its specifier would not: a framework's
    # allowed releases as ranges instead of the != list the resolver gets, "none" for a
    # CUDA wheel series the bounds shut out entirely
    shown: Mapping[str, str] = field(default_factory=dict)
    routes: tuple[Route, ...] = ()
    notes: tuple[str, ...] = ()

    def choice(self, framework: str) -> Choice | None:
        return next((c for c in self.choices if c.request.name == framework), None)


# -- candidates ------------------------------------------------------------------------------


def candidates(request: FrameworkRequest, fleet: Fleet, m: Matrices) -> list[Verdict]:
    """Every build of every known release ``request`` admits, best first, judged."""
    builds = _builds(request, fleet, m, request.specifier)
    return [judge_one(b, fleet, m, cpu=request.cpu) for b in builds]


def judge_one(
    item: tuple[Build, tuple[str, ...], bool], fleet: Fleet, m: Matrices, *, cpu: bool = False
) -> Verdict:
    """One candidate judged; ``cpu``: the requirements ask for a CPU build by name."""
    build, pythons, arm64 = item
    return judge(build, pythons, fleet, m, arm64=arm64, cpu_requested=cpu)


def _admits(specifier: SpecifierSet, version: Version) -> bool:
    """Pre-releases only when the requirement names one (as pip and uv decide)."""
    if version.is_prerelease and not any(s.prereleases for s in specifier):
        return False
    return specifier.contains(version, prereleases=True)


def _builds(
    request: FrameworkRequest, fleet: Fleet, m: Matrices, specifier: SpecifierSet
) -> list[tuple[Build, tuple[str, ...], bool]]:
    out: list[tuple[Build, tuple[str, ...], bool]] = []
    if request.name == "torch":
        routed = request.routed_variant
        for release in reversed(m.torch.releases):
            if not _admits(specifier, release.version):
                continue
            builds = m.torch.builds(release, fleet.platform)
            if request.routed_to is not None:
                builds = [b for b in builds if b.variant == (routed or "?")]
            elif fleet.gpu is None:
                builds.sort(key=lambda b: (b.cuda is not None, b.variant != "pypi"))
            out.extend((b, release.python, True) for b in builds)
    elif request.name == "tensorflow":
        for tf in reversed(m.tensorflow.releases):
            if _admits(specifier, tf.version):
                build = m.tensorflow.build(tf, and_cuda=request.and_cuda)
                if request.cpu:  # tensorflow-cpu: not a CUDA build at all
                    build = replace(
                        build,
                        variant="cpu",
                        cuda=None,
                        cudnn=None,
                        arches=None,
                        needs_system_cuda=False,
                    )
                elif (fleet.gpu is None and not request.and_cuda) or fleet.platform == ARM64:
                    # linux/arm64 wheels carry no CUDA kernels (measured): a CPU build there
                    build = replace(
                        build, cuda=None, cudnn=None, arches=None, needs_system_cuda=False
                    )
                out.append((build, tf.python, tf.arm64_wheels))
    elif request.name == "jax":
        plugin = request.jax_plugin
        for jx in reversed(m.jax.releases):
            if not _admits(specifier, jx.version):
                continue
            if plugin is None:
                cpu = Build(framework="jax", version=jx.version, variant="cpu", cuda=None)
                out.append((cpu, jx.python, True))
                continue
            major, local = plugin
            plugin_build = m.jax.build(jx, major, local=local)
            if plugin_build is None:
                missing = Build(
                    framework="jax", version=jx.version, variant=f"cuda{major}", cuda=None
                )
                out.append((missing, jx.python, True))
                continue
            p = jx.plugins[major]
            out.append((plugin_build, p.python, p.arm64))
    return out[: MAX_PER_FRAMEWORK * 6]


# -- choosing --------------------------------------------------------------------------------


def gpu_floor(fleet: Fleet, m: Matrices) -> DriverVersion | None:
    """The least driver that runs every GPU of the fleet (each needs the driver of the
    first CUDA that supports its architecture)."""
    if fleet.gpu is None:
        return None
    floors = [m.gpus.driver_floor(d.capability, m.cuda) for d in fleet.gpu.devices]
    return max((f.driver for f in floors if f is not None), default=None)


def check_fleet_driver(fleet: Fleet, m: Matrices) -> None:
    """`Unsatisfiable` when the fleet's oldest driver cannot run one of its GPUs at all,
    whatever the build: too old for the architecture, or past its last driver branch."""
    gpu = fleet.gpu
    if gpu is None or gpu.driver is None:
        return
    problems = []
    for device in gpu.devices:
        cap = device.capability
        name = f"{cap.sm} ({device.requested})" if device.requested != cap.sm else cap.sm
        floor = m.gpus.driver_floor(cap, m.cuda)
        arch = m.gpus.architecture(cap)
        if floor is not None and gpu.driver < floor.driver and arch is not None:
            problems.append(
                f"{name} needs driver >= {floor.driver}: {arch.name} first runs with CUDA "
                f"{arch.first_cuda} ({floor.reason.rpartition(': ')[2]})"
            )
        elif (
            arch is not None
            and arch.last_driver_branch is not None
            and (gpu.driver.major > arch.last_driver_branch)
        ):
            problems.append(
                f"{name}: R{arch.last_driver_branch} is the last driver branch that runs "
                f"{arch.name}, and the fleet's oldest driver is {gpu.driver}"
            )
    if problems:
        least = gpu_floor(fleet, m)
        raise Unsatisfiable(
            f"{fleet.target}: the fleet's oldest driver {gpu.driver} cannot run every GPU "
            "in gpu.devices, whatever the build:",
            problems=[Problem(message=p) for p in problems],
            hint=(
                f"Upgrade the fleet to driver >= {least} and set gpu.driver, or "
                if least is not None and gpu.driver < least
                else ""
            )
            + "drop those GPUs from gpu.devices (or give each fleet its own spec).",
        )


def _kind(build: Build) -> tuple[str, str | None]:
    return (build.variant, build.index)


def requires_of(build: Build, platform: str, m: Matrices) -> Requires | None:
    """The NVIDIA wheels ``build`` requires, from its METADATA (``requires.toml``); None
    when unknown (a PyTorch index variant, a release PyPI does not describe)."""
    if build.framework == "torch" and build.variant == "pypi":
        return m.requires.get("torch", build.version, platform)
    if build.framework == "tensorflow" and build.variant == "and-cuda":
        return m.requires.get("tensorflow", build.version, platform, "and-cuda")
    if build.framework == "jax" and build.variant in ("cuda12", "cuda13"):
        return m.requires.get(f"jax-{build.variant}-plugin", build.version, platform, "with-cuda")
    return None


def _cuda_wheels(build: Build) -> bool:
    """Whether a build brings CUDA libraries as wheels (not from the system)."""
    return build.cuda is not None and not build.needs_system_cuda


def compatible(
    a: Build, b: Build, *, m: Matrices | None = None, platform: str = "linux/amd64"
) -> str | None:
    """Why two frameworks' builds cannot share one environment, or None.

    With the tables, the NVIDIA wheels both builds require must admit a common version
    (their METADATA's exact pins and ranges); the cuDNN major and CUDA major checks cover
    builds whose requirements are unknown."""
    if m is not None:
        left, right = requires_of(a, platform, m), requires_of(b, platform, m)
        if left is not None and right is not None and (clash := conflicts(left, right)):
            return (
                f"{a.label} and {b.label} require NVIDIA wheels no version satisfies for both "
                f"({'; '.join(clash[:3])})"
            )
        unknown = [x for x, r in ((a, left), (b, right)) if r is None and _cuda_wheels(x)]
        if unknown and _cuda_wheels(a) and _cuda_wheels(b):
            return (
                f"reprolock does not know which NVIDIA wheels {unknown[0].label} requires, so it "
                f"cannot check that it shares one environment with "
                f"{(b if unknown[0] is a else a).label}"
            )
    if a.cudnn_major is not None and b.cudnn_major is not None and a.cudnn_major != b.cudnn_major:
        return (
            f"{a.label} uses cuDNN {a.cudnn_major} and {b.label} uses cuDNN {b.cudnn_major}: "
            f"one process loads one libcudnn"
        )
    wheels_a = a.cuda is not None and not a.needs_system_cuda
    wheels_b = b.cuda is not None and not b.needs_system_cuda
    if (
        wheels_a
        and wheels_b
        and a.cuda is not None
        and b.cuda is not None
        and a.cuda.major != b.cuda.major
        and (a.cudnn_major is not None or b.cudnn_major is not None)
    ):
        return (
            f"{a.label} and {b.label} bring cuDNN builds for different CUDA majors "
            f"({a.cuda.major} and {b.cuda.major}) under one libcudnn name"
        )
    return None


def plan(
    requests: Iterable[FrameworkRequest],
    fleet: Fleet,
    m: Matrices,
    *,
    pytorch_index: str | None = None,
) -> StackPlan:
    """Choose the builds for ``requests`` on ``fleet``; `Unsatisfiable` when none fit."""
    requests = list(requests)
    check_fleet_driver(fleet, m)
    considered: list[Verdict] = []
    pools: list[list[Verdict]] = []
    notes: list[str] = []
    for request in requests:
        verdicts = candidates(request, fleet, m)
        considered.extend(verdicts)
        if not verdicts:
            notes.append(
                f"{request.name}{request.specifier}: no release in reprolock's matrices; "
                "its build is not checked before resolving"
            )
            continue
        ok = [v for v in verdicts if v.ok]
        if not ok:
            raise _no_build(request, verdicts, fleet, m)
        pools.append(ok[:MAX_PER_FRAMEWORK])
    chosen = _joint(pools, fleet, requests, m)
    choices = []
    for verdict in chosen:
        request = next(r for r in requests if r.name == verdict.build.framework)
        pool = next(p for p in pools if p and p[0].build.framework == request.name)
        others = [c.build for c in chosen if c is not verdict]
        allowed = tuple(
            sorted(
                {
                    v.build.version
                    for v in pool
                    if _kind(v.build) == _kind(verdict.build)
                    and all(
                        compatible(v.build, o, m=m, platform=fleet.platform) is None for o in others
                    )
                }
            )
        )
        choices.append(Choice(request=request, verdict=verdict, allowed=allowed))
        notes.extend(f"{verdict.build.label}: {n}" for n in verdict.notes)
    constraints, reasons, shown = _constraints(choices, fleet, m)
    return StackPlan(
        fleet=fleet,
        choices=tuple(choices),
        considered=tuple(considered),
        constraints=constraints,
        reasons=reasons,
        shown=shown,
        routes=_routes(choices, lambda: pytorch_index or m.torch.index_url),
        notes=tuple(dict.fromkeys(notes)),
    )


def _joint(
    pools: list[list[Verdict]], fleet: Fleet, requests: list[FrameworkRequest], m: Matrices
) -> list[Verdict]:
    if not pools:
        return []
    if len(pools) == 1:
        return [pools[0][0]]

    def agree(a: Build, b: Build) -> str | None:
        return compatible(a, b, m=m, platform=fleet.platform)

    for combo in itertools.product(*pools):
        if all(agree(a.build, b.build) is None for a, b in itertools.combinations(combo, 2)):
            return list(combo)
    # No combination agrees: report the best build of each and what separates them.
    best = [p[0] for p in pools]
    clashes = [
        why
        for a, b in itertools.combinations(best, 2)
        if (why := agree(a.build, b.build)) is not None
    ]
    fixes = _joint_fixes(pools, fleet, requests, m)
    raise Unsatisfiable(
        f"{fleet.target}: the frameworks cannot share one environment: {'; '.join(clashes)}.",
        problems=[Problem(message=f) for f in fixes],
        hint="Pick versions whose CUDA libraries agree"
        + (f", e.g. {fixes[0]}" if fixes else "")
        + ", or split them into two environments (two reprolock specs).",
    )


def _joint_fixes(
    pools: list[list[Verdict]], fleet: Fleet, requests: list[FrameworkRequest], m: Matrices
) -> list[str]:
    """For each framework, the build nearest to the requested ones (any release) that
    agrees with the other frameworks' best; when changing one framework is not enough, the
    newest builds of all of them that agree. Each fix is checked with the same rules (the
    exact NVIDIA wheel requirements from the builds' METADATA) before it is offered."""

    def agree(a: Build, b: Build) -> bool:
        return compatible(a, b, m=m, platform=fleet.platform) is None

    out = []
    for i, pool in enumerate(pools):
        name = pool[0].build.framework
        request = next(r for r in requests if r.name == name)
        others = [p[0].build for j, p in enumerate(pools) if j != i]
        anyver = replace(request, specifier=SpecifierSet())
        fits = [
            v
            for v in candidates(anyver, fleet, m)
            if v.ok and all(agree(v.build, o) for o in others)
        ]
        if not fits:
            continue
        lo, hi = min(v.build.version for v in pool), max(v.build.version for v in pool)
        above = [v for v in fits if v.build.version > hi]
        below = [v for v in fits if v.build.version < lo]
        pick = min(above, key=lambda v: v.build.version) if above else (below or fits)[0]
        op = ">=" if above else "=="
        ver = series_of(pick.build.version) if above else str(pick.build.version)
        with_ = ", ".join(o.label for o in others)
        out.append(f"{name}{op}{ver} ({_paren_text(pick.build)}) agrees with {with_}")
    if out:
        return out
    # Change them all: the newest builds (any release) that agree.
    wide = [
        [v for v in candidates(replace(r, specifier=SpecifierSet()), fleet, m) if v.ok][:40]
        for r in requests
        if any(p and p[0].build.framework == r.name for p in pools)
    ]
    for combo in itertools.product(*wide):
        builds = [v.build for v in combo]
        if all(agree(a, b) for a, b in itertools.combinations(builds, 2)):
            pins = " with ".join(f"{b.framework}=={b.version} ({_paren_text(b)})" for b in builds)
            out.append(f"{pins} share one environment")
            break
    return out


def _constraints(
    choices: list[Choice], fleet: Fleet, m: Matrices
) -> tuple[dict[str, SpecifierSet], dict[str, str], dict[str, str]]:
    """The bounds handed to the resolver, why each holds, and how the unreadable ones read
    (`StackPlan.shown`)."""
    out: dict[str, SpecifierSet] = {}
    why: dict[str, str] = {}
    shown: dict[str, str] = {}
    for choice in choices:
        name = choice.request.name
        known = sorted(_known_versions(name, m))
        excluded = [v for v in known if v not in choice.allowed]
        if excluded:
            out[name] = SpecifierSet(",".join(f"!={v}" for v in excluded))
            why[name] = (
                f"the releases whose {_build_noun(choice.verdict.build)} fits {fleet.target}"
            )
            shown[name] = (
                f"{name} {_runs(choice.allowed, known)} only ({len(excluded)} of the "
                f"{len(known)} known releases excluded)"
            )
    gpu = fleet.gpu
    if gpu is None:
        return out, why, shown
    cuda = SpecifierSet()
    because = []
    if gpu.cuda is not None:
        cuda &= gpu.cuda
        because.append(f"gpu.cuda is {gpu.cuda}")
    ceiling = _driver_ceiling(fleet, m)
    if ceiling is not None:
        cuda &= SpecifierSet(f"<{ceiling}")
        because.append(
            f"the fleet's oldest driver {gpu.driver} runs CUDA <{ceiling} under the "
            f"{gpu.compat.value} policy"
        )
    if str(cuda):
        for name in (*CUDA_RUNTIMES, CUDA_TOOLKIT):
            out[name] = cuda
            why[name] = " and ".join(because)
            series = _series_of_wheel(name)
            if series is not None and not any(
                cuda.contains(f"{series}.{minor}.999", prereleases=True) for minor in range(100)
            ):
                shown[name] = f"{name}: none (its wheels are CUDA {series})"
    if gpu.cudnn is not None:
        for name in CUDNN_WHEELS:
            out[name] = gpu.cudnn
            why[name] = f"gpu.cudnn is {gpu.cudnn}"
    return out, why, shown


def _series_of_wheel(name: str) -> int | None:
    """``nvidia-cuda-runtime-cu11`` → 11: the CUDA major its versions carry."""
    head, _, suffix = name.rpartition("-cu")
    return int(suffix) if head and suffix.isdigit() else None


def _runs(allowed: Sequence[Version], known: Sequence[Version]) -> str:
    """``2.5.0 .. 2.5.1, 2.7.0``: the allowed releases as runs of consecutive known ones."""
    keep = set(allowed)
    runs: list[list[Version]] = [[]]
    for version in known:
        if version in keep:
            runs[-1].append(version)
        elif runs[-1]:
            runs.append([])
    runs += [[v] for v in sorted(keep - set(known))]
    return ", ".join(
        str(run[0]) if len(run) == 1 else f"{run[0]} .. {run[-1]}" for run in runs if run
    )


def _driver_ceiling(fleet: Fleet, m: Matrices) -> str | None:
    """The first CUDA version the fleet's driver cannot run, as a version bound."""
    gpu = fleet.gpu
    if gpu is None or gpu.driver is None:
        return None
    policy = gpu.compat.value
    runnable = [
        t.version
        for t, strict, minor in m.cuda.runnable(gpu.driver)
        if (minor if policy == "minor" else strict)
    ]
    if not runnable:
        return None
    top = max(runnable)
    if policy == "minor":
        return f"{top.major + 1}"
    return f"{top.major}.{top.minor + 1}"


def _known_versions(name: str, m: Matrices) -> list[Version]:
    if name == "torch":
        return [r.version for r in m.torch.releases]
    if name == "tensorflow":
        return [r.version for r in m.tensorflow.releases]
    return [r.version for r in m.jax.releases]


def _routes(choices: list[Choice], base_url: Callable[[], str]) -> tuple[Route, ...]:
    """The indexes the chosen builds come from; ``base_url`` is asked only for one (it
    reads the PyTorch table, which a spec without torch never needs)."""
    out = []
    for choice in choices:
        build = choice.verdict.build
        if build.index and choice.request.routed_to is None:
            out.append(
                Route(
                    name=f"pytorch-{build.index}",
                    url=f"{base_url().rstrip('/')}/{build.index}",
                    packages=TORCH_FAMILY,
                )
            )
    return tuple(out)


def route_story(plan: StackPlan, route: Route, m: Matrices) -> str:
    """Why reprolock routed ``route``'s packages to its index and whether a PyPI build would
    fit instead: sentences for an error about that index (it cannot be reached, say)."""
    packages = ", ".join(route.packages[:-1]) + f" and {route.packages[-1]}"
    choice = plan.choice(route.packages[0])
    text = f"reprolock routed {packages} to {route.url}"
    if choice is None:
        return text + "."
    chosen = choice.verdict.build
    text += f", choosing {chosen.label}"
    passed_over = next(
        (
            v
            for v in plan.considered
            if v.build.framework == chosen.framework
            and v.build.version == chosen.version
            and v.build.variant == "pypi"
        ),
        None,
    )
    if passed_over is not None and passed_over.reasons:
        text += f" because its PyPI wheel {'; '.join(passed_over.reasons)}"
    text += "."
    anywhere = replace(choice.request, specifier=SpecifierSet(), routed_to=None)
    pypi = [v for v in candidates(anywhere, plan.fleet, m) if v.ok and v.build.variant == "pypi"]
    if not pypi:
        return text + f" No PyPI build of {chosen.framework} fits {plan.fleet.target}."
    best = max(pypi, key=lambda v: v.build.version)
    return text + (
        f" A PyPI build would also fit: {best.build.label}; ask for "
        f"{chosen.framework}=={series_of(best.build.version)}.* to lock it from PyPI alone."
    )


# -- explaining ------------------------------------------------------------------------------


def group_verdicts(verdicts: list[Verdict]) -> list[str]:
    """``torch 2.5.0, 2.5.1 (cu124, CUDA 12.4): has no kernels for sm_120 (RTX 5090)``."""
    groups: dict[tuple[str, tuple[str, ...]], list[Version]] = {}
    for v in verdicts:
        b = v.build
        what = b.label.split(" (", 1)[1].rstrip(")") if " (" in b.label else b.variant
        groups.setdefault((what, v.reasons), []).append(b.version)
    lines = []
    name = verdicts[0].build.framework
    for (what, reasons), versions in groups.items():
        vs = sorted(set(versions))
        shown = ", ".join(str(x) for x in vs[-3:])
        if len(vs) > 3:
            shown = f"{vs[0]} .. {vs[-1]}"
        lines.append(f"{name} {shown} ({what}) {'; '.join(reasons)}")
    return lines


def _no_build(
    request: FrameworkRequest, verdicts: list[Verdict], fleet: Fleet, m: Matrices
) -> Unsatisfiable:
    wanted = f"{request.name}{request.specifier}" if str(request.specifier) else request.name
    versions = sorted({v.build.version for v in verdicts})
    series = sorted({series_of(v) for v in versions}, key=lambda s: tuple(map(int, s.split("."))))
    shown = request.name + " " + (series[0] if len(series) == 1 else f"{series[0]}-{series[-1]}")
    headline = "; ".join(verdicts[0].reasons) or "does not fit"
    fixes = nearest_fixes(request, fleet, m, versions)
    text = f"{fleet.target}: {shown} has no build that fits ({wanted}): {headline}"
    if fixes:
        text += f"; {fixes[0]}"
    hint = (
        ("Nearest fixes: " + "; or ".join(fixes) + ".")
        if fixes
        else "Loosen the framework requirement or the [gpu] constraints."
    )
    if any(UNKNOWN in r for v in verdicts for r in v.reasons):
        hint += f" For a build whose kernels reprolock does not know: {WAYS_OUT}."
    return Unsatisfiable(
        text + ".",
        problems=[Problem(message=line) for line in group_verdicts(verdicts)[:12]],
        hint=hint,
    )


def _driver_text(build: Build, fleet: Fleet, m: Matrices) -> str:
    if build.cuda is None or fleet.gpu is None:
        return ""
    try:
        strict = m.cuda.need(build.cuda, "strict").driver
        minor = m.cuda.need(build.cuda, "minor").driver
    except ValueError:
        return ""
    if fleet.gpu.compat.value == "minor" and minor != strict:
        return f" and needs driver >= {minor} (>= {strict} for PTX JIT and every feature)"
    return f" and needs driver >= {strict}"


def _variant_text(build: Build) -> str:
    """``the PyPI wheel (CUDA 12.4)``, ``cu124``: after "with"."""
    if build.variant == "pypi":
        return f"the PyPI wheel (CUDA {build.cuda})" if build.cuda else "the PyPI wheel"
    if build.index:
        return build.index
    return build.label.split(" (", 1)[1].rstrip(")")


def _paren_text(build: Build) -> str:
    """``PyPI wheel, CUDA 12.4``, ``cu124``: inside parentheses after a pin."""
    if build.variant == "pypi":
        return f"PyPI wheel, CUDA {build.cuda}" if build.cuda else "PyPI wheel"
    return _variant_text(build)


def _build_noun(build: Build) -> str:
    """``PyPI wheel (CUDA 12.4)``, ``cu124 build``, ``CPU build``: what fits or not."""
    if build.variant == "pypi":
        return f"PyPI wheel (CUDA {build.cuda})" if build.cuda else "PyPI wheel"
    if build.index == "cpu":
        return "CPU build"
    return f"{_variant_text(build)} build"


def nearest_fixes(
    request: FrameworkRequest, fleet: Fleet, m: Matrices, requested: list[Version]
) -> list[str]:
    """What would make a build fit: another release, a newer driver, a looser constraint,
    another Python — each the smallest change found."""
    out: list[str] = []
    lo = min(requested) if requested else None
    # 1. another release of the framework.
    anyver = replace(request, specifier=SpecifierSet())
    fits = [v for v in candidates(anyver, fleet, m) if v.ok]
    if not fits and request.routed_to is not None:
        fits = [v for v in candidates(replace(anyver, routed_to=None), fleet, m) if v.ok]
    if fits:
        above = [v for v in fits if lo is None or v.build.version > max(requested)]
        pick = (
            min(above, key=lambda v: v.build.version)
            if above
            else max(fits, key=lambda v: v.build.version)
        )
        op = ">=" if above else "=="
        ver = series_of(pick.build.version) if op == ">=" else str(pick.build.version)
        text = f"{request.name}{op}{ver} with {_variant_text(pick.build)} fits"
        out.append(text + _driver_text(pick.build, fleet, m))
    if request.routed_to is not None:
        unrouted = replace(request, routed_to=None)
        fits = [v for v in candidates(unrouted, fleet, m) if v.ok]
        if fits:
            chosen = fits[0].build
            instead = (
                "drop the [[python.index]] route of torch (the PyPI wheel fits)"
                if chosen.index is None
                else f"route torch to the {chosen.index} index instead"
            )
            out.append(f"{instead}: {chosen.label}")
    plugin = request.jax_plugin
    if request.name == "jax" and plugin is not None:
        other = 12 if plugin[0] == 13 else 13
        extra = f"cuda{other}-local" if plugin[1] else f"cuda{other}"
        swapped = replace(request, extras=frozenset({extra}))
        fits = [v for v in candidates(swapped, fleet, m) if v.ok]
        if fits:
            out.append(f"jax[{extra}] fits ({fits[0].build.label})")
    gpu = fleet.gpu
    if gpu is not None:
        # 2. a newer fleet driver.
        if gpu.driver is not None:
            loose = replace(fleet, gpu=replace(gpu, driver=None))
            needs = []
            for v in candidates(request, loose, m):
                if v.ok and v.build.cuda is not None:
                    with contextlib.suppress(ValueError):
                        driver = m.cuda.need(v.build.cuda, gpu.compat.value).driver
                        needs.append((driver, v))
            if needs:
                # The smallest upgrade; among builds it enables, the first (newest, preferred)
                # — never below what the fleet's GPUs themselves need.
                least = min(d for d, _ in needs)
                pick = next(v for d, v in needs if d == least)
                floor = gpu_floor(fleet, m)
                if floor is not None and floor > least:
                    least = floor
                out.append(f"upgrade the fleet to driver >= {least} for {pick.build.label}")
        # 3. a looser CUDA / cuDNN constraint.
        if gpu.cuda is not None or gpu.cudnn is not None:
            loose = replace(fleet, gpu=replace(gpu, cuda=None, cudnn=None))
            fits = [v for v in candidates(request, loose, m) if v.ok]
            if fits:
                out.append(f"drop gpu.cuda/gpu.cudnn to allow {fits[0].build.label}")
    # 4. another Python.
    pythons = sorted(
        {p for v in candidates(request, fleet, m) for p in v.python},
        key=lambda p: tuple(map(int, p.split("."))),
    )
    if pythons and fleet.python not in pythons:
        out.append(f"use Python {span(tuple(pythons))} (environment.python)")
    return list(dict.fromkeys(out))[:3]


def cuda_of_variant(name: str) -> CudaVersion | None:
    """``cu124`` → 12.4."""
    if name.startswith("cu") and name[2:].isdigit() and len(name) >= 4:
        return CudaVersion.parse(f"{name[2:-1]}.{name[-1]}")
    return None
