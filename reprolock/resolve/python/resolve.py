"""Resolve a spec's Python requirements for one target into pinned, hashed wheels."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version
from resolvelib import BaseReporter, ResolutionImpossible, ResolutionTooDeep, Resolver
from resolvelib.providers import AbstractProvider
from resolvelib.structs import RequirementInformation

from reprolock.errors import Problem, Unsatisfiable
from reprolock.resolve.python.finder import Fetcher, Finder
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


def _memoizing_resolver() -> type[Resolver[Req, Candidate, str]] | None:
    """A Resolver whose resolution remembers whether a project's pin satisfies its criterion.

    On every round resolvelib asks, for every project it has pinned, whether the pin still
    satisfies that project's criterion: work that grows with the square of the number of
    projects.  A criterion is never changed once made (resolvelib makes a new one whenever
    its requirements change: ``_add_to_criteria``, ``_remove_information_from_criteria``,
    backjumping's patches) and neither is a pin, so the answer for the pair stands: the last
    one per project is kept, and asked again only when the criterion or the pin is another
    object.

    This overrides resolvelib's private ``Resolution._is_current_pin_satisfying`` and uses
    its private ``_build_result``, both as resolvelib 1.1 and 1.2 have them (the
    ``resolvelib.resolvers`` package); with any other layout this returns None and the plain
    Resolver is used, which gives the same result, only slower on large graphs.
    """
    try:
        from resolvelib.resolvers import Criterion, Resolution, Result  # noqa: PLC0415
        from resolvelib.resolvers.resolution import _build_result  # noqa: PLC0415
    except ImportError:
        return None
    if not callable(getattr(Resolution, "_is_current_pin_satisfying", None)):
        return None

    class _Resolution(Resolution[Req, Candidate, str]):
        def __init__(
            self,
            provider: AbstractProvider[Req, Candidate, str],
            reporter: BaseReporter[Req, Candidate, str],
        ) -> None:
            super().__init__(provider, reporter)
            self._satisfying: dict[str, tuple[Criterion[Req, Candidate], Candidate, bool]] = {}

        def _is_current_pin_satisfying(
            self, name: str, criterion: Criterion[Req, Candidate]
        ) -> bool:
            pin = self.state.mapping.get(name)
            if pin is None:
                return False
            found = self._satisfying.get(name)
            if found is None or found[0] is not criterion or found[1] is not pin:
                found = (criterion, pin, super()._is_current_pin_satisfying(name, criterion))
                self._satisfying[name] = found
            return found[2]

    class _Resolver(Resolver[Req, Candidate, str]):
        def resolve(  # type: ignore[override]  # as resolvelib's own Resolver.resolve
            self, requirements: Iterable[Req], max_rounds: int = 100
        ) -> Result[Req, Candidate, str]:
            resolution = _Resolution(self.provider, self.reporter)
            return _build_result(resolution.resolve(requirements, max_rounds=max_rounds))

    return _Resolver


_MEMOIZING_RESOLVER = _memoizing_resolver()


def _resolver(provider: AbstractProvider[Req, Candidate, str]) -> Resolver[Req, Candidate, str]:
    """resolvelib's Resolver, memoizing pin checks where this resolvelib allows it."""
    if _MEMOIZING_RESOLVER is not None:
        return _MEMOIZING_RESOLVER(provider, BaseReporter())
    return Resolver(provider, BaseReporter())


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


def resolve_python(
    spec: PythonSpec,
    target: PythonTarget,
    fetcher: Fetcher,
    *,
    preferred: Mapping[NormalizedName, Version] | None = None,
    constraints: Mapping[NormalizedName, SpecifierSet] | None = None,
    patches: Patches | None = None,
    reasons: Mapping[NormalizedName, str] | None = None,
) -> PythonResolution:
    """Pins for ``spec``'s requirements on ``target``; `Unsatisfiable` with causes otherwise."""
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
    resolver = _resolver(provider)
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
