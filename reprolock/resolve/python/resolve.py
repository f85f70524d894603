"""Resolve a spec's Python requirements for one target into pinned, hashed wheels."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version
from resolvelib import BaseReporter, ResolutionImpossible, ResolutionTooDeep, Resolver
from resolvelib.structs import RequirementInformation

from reprolock.errors import Problem, Unsatisfiable
from reprolock.lock import BuildEnv
from reprolock.resolve.python.finder import Fetcher, Finder
from reprolock.resolve.python.index import SdistMetadata
from reprolock.resolve.python.provider import (
    Candidate,
    Patches,
    PythonProvider,
    Req,
    requirement_to_reqs,
)
from reprolock.resolve.python.select import Release, Selection
from reprolock.resolve.python.target import PythonTarget
from reprolock.spec import PythonSpec

MAX_ROUNDS = 200_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Pin:
    """One resolved project."""

    name: NormalizedName
    version: Version
    release: Release
    dependencies: tuple[NormalizedName, ...]
    required_by: tuple[str, ...]  # "the spec" or "parent==version", sorted


@dataclass(slots=True)
class PythonResolution:
    target: PythonTarget
    pins: dict[NormalizedName, Pin]
    selections: dict[NormalizedName, Selection] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # how each pin that is built from its sdist is built (filled in by the caller)
    builds: dict[NormalizedName, BuildEnv] = field(default_factory=dict)


def resolve_python(
    spec: PythonSpec,
    target: PythonTarget,
    fetcher: Fetcher,
    *,
    preferred: Mapping[NormalizedName, Version] | None = None,
    constraints: Mapping[NormalizedName, SpecifierSet] | None = None,
    patches: Patches | None = None,
    reasons: Mapping[NormalizedName, str] | None = None,
    sdists: SdistMetadata | None = None,
) -> PythonResolution:
    """Pins for ``spec``'s requirements on ``target``; `Unsatisfiable` with causes otherwise.

    With ``sdists``, a release without a wheel for the target may be built from its sdist
    when ``spec`` allows building the project (``[python] sdists``, ``no-build``, ...)."""
    env = {**target.marker_environment(), "extra": ""}
    roots: list[Req] = []
    for requirement in spec.requirements:
        if requirement.marker is None or requirement.marker.evaluate(env):
            roots.extend(requirement_to_reqs(requirement, None))
    finder = Finder(
        fetcher,
        target,
        exclude_newer=spec.exclude_newer,
        allow_unhashed=frozenset(canonicalize_name(n) for n in spec.allow_unhashed),
        sdists=sdists,
        may_build=spec.may_build,
    )
    provider = PythonProvider(
        finder,
        prerelease=spec.prerelease,
        preferred=preferred or {},
        direct={r.key for r in roots},
        constraints=constraints,
        patches=patches,
    )
    finder.choose = provider.choose
    finder.prefetch((r.name, r.specifier) for r in roots)
    resolver: Resolver[Req, Candidate, str] = Resolver(provider, BaseReporter())
    try:
        result = resolver.resolve(roots, max_rounds=MAX_ROUNDS)
    except ResolutionImpossible as exc:
        raise _explain_impossible(
            exc.causes, finder, target, constraints or {}, reasons or {}
        ) from None
    except ResolutionTooDeep:
        raise Unsatisfiable(
            f"resolution for {target} gave up after {MAX_ROUNDS} rounds of backtracking.",
            hint="Narrow the requirements (add upper bounds to the packages that backtrack) "
            "or pin the ones you know work together.",
        ) from None
    pins = _pins(result.mapping, result.graph, roots)
    resolution = PythonResolution(target=target, pins=pins)
    resolution.selections = {name: finder.selection(name) for name in pins}
    resolution.warnings.extend(provider.extras_missing)
    return resolution


def _pins(
    mapping: Mapping[str, Candidate], graph: object, roots: Sequence[Req]
) -> dict[NormalizedName, Pin]:
    deps: dict[NormalizedName, set[NormalizedName]] = {}
    parents: dict[NormalizedName, set[str]] = {}
    for req in roots:
        parents.setdefault(req.name, set()).add("the spec")
    for key, candidate in mapping.items():
        base = candidate.name
        deps.setdefault(base, set())
        for child in graph.iter_children(key):  # type: ignore[attr-defined]
            child_name = mapping[child].name
            if child_name != base:
                deps[base].add(child_name)
                parents.setdefault(child_name, set()).add(f"{base}=={candidate.version}")
    pins: dict[NormalizedName, Pin] = {}
    for candidate in mapping.values():
        if candidate.extra is not None:
            continue
        pins[candidate.name] = Pin(
            name=candidate.name,
            version=candidate.version,
            release=candidate.release,
            dependencies=tuple(sorted(deps.get(candidate.name, ()))),
            required_by=tuple(sorted(parents.get(candidate.name, ()))),
        )
    return dict(sorted(pins.items()))


def _explain_impossible(
    causes: Collection[RequirementInformation[Req, Candidate]],
    finder: Finder,
    target: PythonTarget,
    constraints: Mapping[NormalizedName, SpecifierSet],
    reasons: Mapping[NormalizedName, str],
) -> Unsatisfiable:
    problems: list[Problem] = []
    by_name: dict[NormalizedName, list[RequirementInformation[Req, Candidate]]] = {}
    for cause in causes:
        by_name.setdefault(cause.requirement.name, []).append(cause)
    for name in sorted(by_name):
        chains = sorted(
            {f"{c.parent or 'the spec'} requires {c.requirement}" for c in by_name[name]}
        )
        selection = finder.selection(name)
        available = ", ".join(str(r.version) for r in selection.releases[:6]) or "none"
        why = _rejections(selection, [c.requirement for c in by_name[name]])
        message = "; ".join(chains) + f". Installable versions for this target: {available}."
        if why:
            message += " " + why
        if name in constraints:
            because = reasons.get(name, "of the CUDA stack")
            message += f" Only {name}{constraints[name]} is allowed: {because}."
        problems.append(Problem(message=message))
    return Unsatisfiable(
        f"no set of Python packages satisfies every requirement for {target}:",
        problems=problems,
        hint="Relax the conflicting requirements, or run `reprolock explain NAME` for the "
        "versions considered and why each was rejected.",
    )


def _rejections(selection: Selection, reqs: Sequence[Req]) -> str:
    """Why versions that the requirements would accept are not installable (a few)."""
    notes: list[str] = []
    for version in sorted(selection.rejected, reverse=True):
        if all(r.specifier.contains(version, prereleases=True) for r in reqs):
            notes.append(f"{version}: {selection.rejected[version][0]}")
        if len(notes) == 3:
            break
    return ("Rejected: " + "; ".join(notes) + ".") if notes else ""


def requirement_names(requirements: Sequence[Requirement]) -> list[NormalizedName]:
    return sorted({canonicalize_name(r.name) for r in requirements})
