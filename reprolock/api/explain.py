"""``reprolock explain NAME``: why a Python package is (or is not) locked as it is."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from reprolock.api.apt_layer import AptResult
from reprolock.api.network import NetOptions
from reprolock.api.project import (
    default_lock_path,
    find_spec,
    load_spec,
    read_lock,
    shipped_matrices,
)
from reprolock.api.python_layer import (
    index_urls,
    locked_pythons,
    open_router,
    preferred_pins,
    target_id,
    targets_of,
)
from reprolock.api.sdist_layer import SdistBuilds
from reprolock.api.stack_layer import plan_target
from reprolock.errors import InputError, Unsatisfiable
from reprolock.lock import BuildEnv, LockedTarget
from reprolock.net.cache import Cache
from reprolock.net.session import new_session
from reprolock.resolve.python.finder import Fetcher, Finder
from reprolock.resolve.python.newer import Judge, Verdict, known_versions
from reprolock.resolve.python.provider import PythonProvider
from reprolock.resolve.python.resolve import Pin, resolve_python
from reprolock.resolve.python.select import Selection
from reprolock.stack.companions import companion_patches
from reprolock.stack.plan import StackPlan


@dataclass(frozen=True, slots=True, kw_only=True)
class PackageExplanation:
    name: str
    target_id: str
    target: str
    lookup: str
    selection: Selection
    pin: Pin | None
    failure: str | None  # the resolution error, when the set is unsatisfiable
    # every version newer than the chosen one, newest first, with the rule that kept it out
    newer: tuple[Verdict, ...] = ()
    # installable for the target and allowed by the pre-release policy, newest first
    installable: tuple[Version, ...] = ()
    # the other versions (not newer than the chosen one), newest first: the first rule
    rejected: tuple[Verdict, ...] = ()
    # the spec's requirements on it whose marker is false on this target
    not_applying: tuple[str, ...] = ()
    build: BuildEnv | None = None  # how the chosen release is built from its sdist


def explain_package(
    name: str, *, spec_path: Path | None, target: str | None, cwd: Path, net: NetOptions
) -> list[PackageExplanation]:
    spec_file = find_spec(spec_path, cwd)
    spec = load_spec(spec_file)
    if spec.python is None:
        raise InputError(f"{spec_file}: has no [python] table, so no Python package to explain.")
    lock_file = default_lock_path(spec_file)
    previous = {}
    if lock_file.exists():
        previous = {t.id: t for t in read_lock(lock_file)[0].targets}
    pythons, facts = locked_pythons(spec, previous.values())
    targets = [
        t for t in targets_of(spec, pythons, facts) if target is None or target_id(t) == target
    ]
    if not targets:
        ids = ", ".join(target_id(t) for t in targets_of(spec))
        raise InputError(f'the spec has no target "{target}".', hint=f"Targets: {ids}.")
    project = canonicalize_name(name)
    out: list[PackageExplanation] = []
    matrices = shipped_matrices()
    bases = {t.platform: t.base for t in previous.values() if t.base is not None}
    for python_target in targets:
        tid = target_id(python_target)
        plan = plan_target(spec, tid, python_target, bases.get(python_target.platform), matrices)
        with (
            open_router(spec, net, plan.routes, [python_target]) as (router, _indexes),
            contextlib.closing(new_session(net.config)) as session,
        ):
            fetcher = Fetcher(router)
            builds = SdistBuilds(
                spec.python, fetcher, session, Cache(net.cache_dir), offline=net.config.offline
            )
            try:
                finder = Finder(
                    fetcher,
                    python_target,
                    exclude_newer=spec.python.exclude_newer,
                    allow_unhashed=frozenset(
                        canonicalize_name(n) for n in spec.python.allow_unhashed
                    ),
                    sdists=builds,
                    may_build=spec.python.may_build,
                )
                selection = finder.selection(project)
                pin, failure, judge, build = None, None, None, None
                try:
                    resolution = resolve_python(
                        spec.python,
                        python_target,
                        fetcher,
                        preferred=preferred_pins(previous.get(tid), frozenset()),
                        constraints={canonicalize_name(n): c for n, c in plan.constraints.items()},
                        patches=companion_patches(lambda: matrices.torch),
                        reasons={canonicalize_name(n): r for n, r in plan.reasons.items()},
                        index_urls=index_urls(router),
                        sdists=builds,
                    )
                    pin = resolution.pins.get(project)
                    judge = resolution.judge
                    if pin is not None and pin.release.is_sdist:
                        build = builds.build_env(pin.release.wheel, python_target)
                except Unsatisfiable as exc:
                    failure = exc.render()
                if judge is None:  # unsatisfiable: the spec's policies, no resolved requirements
                    judge = Judge(
                        finder,
                        PythonProvider(
                            finder,
                            prerelease=spec.python.prerelease,
                            preferred={},
                            direct=(),
                            constraints={
                                canonicalize_name(n): c for n, c in plan.constraints.items()
                            },
                        ),
                        pins={},
                        requirements={},
                        patches=None,
                        reasons={canonicalize_name(n): r for n, r in plan.reasons.items()},
                    )
                env = {**python_target.marker_environment(), "extra": ""}
                newer = tuple(judge.newer(project))
                pre = judge.prereleases_allowed(project)
                installable = tuple(
                    r.version for r in selection.releases if pre or not r.version.is_prerelease
                )
                passed = {v.version for v in newer} | set(installable)
                rejected = tuple(
                    judge.first_rule(project, v, deep=False)
                    for v in known_versions(selection)
                    if v not in passed
                )
                out.append(
                    PackageExplanation(
                        name=project,
                        target_id=tid,
                        target=str(python_target),
                        lookup=router.describe(project),
                        selection=selection,
                        pin=pin,
                        failure=failure,
                        newer=newer,
                        installable=installable,
                        rejected=rejected,
                        not_applying=_not_applying(spec.python.requirements, project, env),
                        build=build,
                    )
                )
            finally:
                fetcher.close()
    return out


def _not_applying(
    requirements: Iterable[Requirement], project: str, env: Mapping[str, str]
) -> tuple[str, ...]:
    """The requirements on ``project`` whose marker is false in the marker environment."""
    return tuple(
        str(r)
        for r in requirements
        if canonicalize_name(r.name) == project
        and r.marker is not None
        and not r.marker.evaluate(dict(env))
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class StackExplanation:
    target_id: str
    plan: StackPlan | None
    failure: Unsatisfiable | None
    locked: LockedTarget | None  # what the lock holds for the target, if locked


def is_target(name: str, *, spec_path: Path | None, cwd: Path) -> bool:
    """True when ``name`` is one of the spec's target ids (not a package name)."""
    spec = load_spec(find_spec(spec_path, cwd))
    return any(target_id(t) == name for t in targets_of(spec))


def explain_stack(
    target: str | None, *, spec_path: Path | None, cwd: Path
) -> list[StackExplanation]:
    """The stack solver's decision path per target, offline: the frameworks' builds it
    considered, why each was rejected, what it chose and what it hands the resolver."""
    spec_file = find_spec(spec_path, cwd)
    spec = load_spec(spec_file)
    lock_file = default_lock_path(spec_file)
    previous: dict[str, LockedTarget] = {}
    if lock_file.exists():
        previous = {t.id: t for t in read_lock(lock_file)[0].targets}
    pythons, facts = locked_pythons(spec, previous.values())
    targets = [
        t for t in targets_of(spec, pythons, facts) if target is None or target_id(t) == target
    ]
    matrices = shipped_matrices()
    out = []
    for python_target in targets:
        tid = target_id(python_target)
        locked = previous.get(tid)
        base = locked.base if locked is not None else None
        try:
            plan = plan_target(spec, tid, python_target, base, matrices)
        except Unsatisfiable as exc:
            out.append(StackExplanation(target_id=tid, plan=None, failure=exc, locked=locked))
            continue
        out.append(StackExplanation(target_id=tid, plan=plan, failure=None, locked=locked))
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class AptExplanation:
    name: str
    target_id: str
    version: str | None  # what the closure installs, None when it does not
    upgrades: str | None  # the installed version it replaces
    why: tuple[str, ...]
    installed: str | None  # the base image's version, when it has one
    notes: tuple[str, ...] = ()


def explain_apt(
    name: str, *, spec_path: Path | None, target: str | None, cwd: Path, net: NetOptions
) -> list[AptExplanation]:
    """Why apt package ``name`` is (or is not) in a target's closure: the chain of
    dependencies from a requested package, resolved again from the locked base image."""
    from reprolock.api.apt_layer import lock_apt  # noqa: PLC0415  (the HTTP stack, lazily)

    spec_file = find_spec(spec_path, cwd)
    spec = load_spec(spec_file)
    lock_file = default_lock_path(spec_file)
    if not lock_file.exists():
        raise InputError(
            f"{lock_file}: no lock yet; the apt closure starts from the locked base image.",
            hint="Run `reprolock lock` first.",
        )
    locked = [t for t in read_lock(lock_file)[0].targets if target is None or t.id == target]
    if not locked:
        raise InputError(f'the lock has no target "{target}".')
    # an interpreter from the distribution's archive is part of the closure
    extra = {t.platform: t.interpreter.packages for t in locked if t.interpreter is not None}
    if (spec.apt is None or not spec.apt.packages) and not any(extra.values()):
        raise InputError(f"{spec_file}: has no [apt] packages, so no apt package to explain.")
    bases = {t.platform: t.base for t in locked if t.base is not None}
    results = lock_apt(
        spec, spec_file.parent, bases, net, {t.platform: t.id for t in locked}, extra
    )
    out = []
    for t in locked:
        result = results.get(t.platform)
        if result is None:
            continue
        plan = result.plan
        cand = plan.install.get(name)
        out.append(
            AptExplanation(
                name=name,
                target_id=t.id,
                version=None if cand is None else cand.version,
                upgrades=plan.upgrades.get(name),
                why=plan.why.get(name, ()),
                installed=_installed_version(result, name),
                notes=tuple(n for n in plan.notes if n.startswith(f"{name} ")),
            )
        )
    return out


def _installed_version(result: AptResult, name: str) -> str | None:
    return result.installed.get(name)
