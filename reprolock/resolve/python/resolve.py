"""Resolve a spec's Python requirements for one target into pinned, hashed wheels."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version
from resolvelib import BaseReporter, ResolutionImpossible, ResolutionTooDeep, Resolver
from resolvelib.providers import AbstractProvider
from resolvelib.structs import RequirementInformation

from reprolock.errors import InputError, Problem, ReprolockError, Unsatisfiable
from reprolock.lock import BuildEnv
from reprolock.resolve.python.finder import Fetcher, Finder
from reprolock.resolve.python.index import SdistMetadata
from reprolock.resolve.python.metadata import applying
from reprolock.resolve.python.newer import Downgrade, Judge, why_unusable
from reprolock.resolve.python.provider import (
    Candidate,
    DeadEnd,
    Patches,
    PythonProvider,
    Req,
    requirement_to_reqs,
)
from reprolock.resolve.python.select import Release, Selection
from reprolock.resolve.python.target import PythonTarget
from reprolock.spec import PythonSpec

if TYPE_CHECKING:
    from resolvelib.resolvers import Result

MAX_ROUNDS = 200_000
SHOWN_VERSIONS = 20  # versions named in one cause of an unsatisfiable set; the rest counted
SHOWN_PER_GROUP = 5  # of them, per requirement that many versions of one project make
SHOWN_CAUSES = 5  # projects named in an unsatisfiable set; the rest counted

# Where a project was looked up: the index URLs (without credentials), in order.
IndexUrls = Callable[[NormalizedName], Sequence[str]]


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
        from resolvelib.resolvers import Criterion, Resolution  # noqa: PLC0415
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


# Restarts: after RESTART_CONFLICTS conflicts that named a new culprit the resolution starts
# over with the culprits pinned last; each restart doubles the number, at most RESTARTS.
RESTART_CONFLICTS = 16
RESTARTS = 8


class Restart(Exception):
    """Start the resolution over: new culprits are known (see `ConflictReporter`)."""


class ConflictReporter(BaseReporter[Req, Candidate, str]):
    """Learns, on each conflict, which pins ruled out every candidate of the project the
    resolver tried to pin (`PythonProvider.find_culprits`), and asks for a `Restart` once
    ``patience`` conflicts have named culprits the provider does not yet pin last.

    resolvelib backjumps to the most recent pin connected to a conflict: with a project many
    others require, that is rarely the culprit, and the pins between are undone and redone
    with older releases, one combination after another, before the culprit is reached.  A
    new attempt that pins the culprits last does not meet the conflict at all.  Only
    resolvelib's public reporter hooks."""

    def __init__(self, provider: PythonProvider | None, patience: int | None) -> None:
        self.provider = provider
        self.patience = patience
        self.rejected: list[tuple[object, Candidate]] = []
        self.learned: set[str] = set()
        self.conflicts = 0
        self.rounds = 0

    def starting_round(self, index: int) -> None:
        self.rejected.clear()
        self.rounds = index + 1

    def rejecting_candidate(self, criterion: object, candidate: Candidate) -> None:
        self.rejected.append((criterion, candidate))

    def resolving_conflicts(
        self, causes: Collection[RequirementInformation[Req, Candidate]]
    ) -> None:
        provider = self.provider
        if provider is None or self.patience is None:
            return
        for criterion, candidate in self.rejected:
            information = getattr(criterion, "information", ())
            self.learned |= provider.find_culprits(information, candidate) - provider.culprits
        if self.learned:
            self.conflicts += 1
            if self.conflicts >= self.patience:
                raise Restart


def _resolver(
    provider: AbstractProvider[Req, Candidate, str], reporter: ConflictReporter | None = None
) -> Resolver[Req, Candidate, str]:
    """resolvelib's Resolver, memoizing pin checks where this resolvelib allows it."""
    reporter = reporter or ConflictReporter(None, None)
    if _MEMOIZING_RESOLVER is not None:
        return _MEMOIZING_RESOLVER(provider, reporter)
    return Resolver(provider, reporter)


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
    # locked versions below the newest allowed for want of a usable file, by name
    downgrades: list[Downgrade] = field(default_factory=list)
    judge: Judge | None = None  # why newer versions were not chosen (for explain)
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
    index_urls: IndexUrls | None = None,
    sdists: SdistMetadata | None = None,
) -> PythonResolution:
    """Pins for ``spec``'s requirements on ``target``; `Unsatisfiable` with causes otherwise,
    `InputError` when a requirement of the spec names a project no index has.

    ``index_urls`` names the indexes a project is looked up on (for messages). With
    ``sdists``, a release without a wheel for the target may be built from its sdist when
    ``spec`` allows building the project (``[python] sdists``, ``no-build``, ...)."""
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
        roots=roots,
    )
    finder.choose = provider.choose
    finder.prefetch((r.name, r.specifier) for r in roots)
    urls = index_urls or (lambda _name: ())
    _check_found(roots, finder, urls, known=preferred or {})
    try:
        result = _resolve(provider, roots)
    except ResolutionImpossible as exc:
        raise _explain_impossible(
            exc.causes, finder, provider, target, constraints or {}, reasons or {}, urls
        ) from None
    except DeadEnd as end:
        raise _explain_dead_end(end, finder, provider, target, urls) from None
    except ResolutionTooDeep:
        raise Unsatisfiable(
            f"resolution for {target} gave up after {MAX_ROUNDS} rounds of backtracking.",
            hint="Narrow the requirements (add upper bounds to the packages that backtrack) "
            "or pin the ones you know work together.",
        ) from None
    pins = _pins(result.mapping, result.graph, roots)
    resolution = PythonResolution(target=target, pins=pins)
    resolution.selections = {name: finder.selection(name) for name in pins}
    resolution.warnings.extend(dict.fromkeys(provider.extras_missing))  # once each
    requirements: dict[NormalizedName, list[Req]] = {}
    for criterion in result.criteria.values():
        for info in criterion.information:
            req, parent = info.requirement, info.parent
            if parent is None or parent.name != req.name:  # not an extra's own pin
                requirements.setdefault(req.name, []).append(req)
    resolution.judge = Judge(
        finder,
        provider,
        pins={name: pin.version for name, pin in pins.items()},
        requirements=requirements,
        patches=patches,
        reasons=reasons or {},
    )
    resolution.downgrades = resolution.judge.downgrades()
    return resolution


def _resolve(provider: PythonProvider, roots: Sequence[Req]) -> Result[Req, Candidate, str]:
    """resolvelib's resolution of ``roots``, started over with the culprits pinned last
    (`Restart`) while conflicts name new ones, `RESTARTS` times at most."""
    patience, rounds = RESTART_CONFLICTS, MAX_ROUNDS  # the attempts share the rounds
    for _ in range(RESTARTS):
        reporter = ConflictReporter(provider, patience)
        try:
            return _resolver(provider, reporter).resolve(roots, max_rounds=rounds)
        except Restart:
            provider.culprits |= reporter.learned
            patience *= 2
            rounds -= reporter.rounds
    return _resolver(provider).resolve(roots, max_rounds=rounds)


def _found(finder: Finder, name: NormalizedName) -> bool:
    """Whether any index lists files of ``name`` at all."""
    return bool(finder.fetcher.page_files(name) or finder.fetcher.index.other_files(name))


def _check_found(
    roots: Sequence[Req], finder: Finder, urls: IndexUrls, *, known: Collection[str] = ()
) -> None:
    """`InputError` (exit 2) naming the spec's requirements that no configured index has,
    with close names where they are cheap to find (``known``: names the existing lock pins)."""
    missing = sorted({r.name for r in roots if not _found(finder, r.name)})
    if not missing:
        return
    problems = [
        Problem(message=f"{n} was not found on {_where(urls, n)}{suggestion}.")
        for n in missing
        for suggestion in [_did_you_mean(n, roots, finder, known)]
    ]
    hint = (
        "Check the spelling in [python] requirements, or add the index that has it "
        "([[python.index]])."
    )
    if len(problems) == 1:
        raise InputError(problems[0].message, hint=hint)
    raise InputError(
        f"{len(problems)} requirements of the spec are on no configured index:",
        problems=problems,
        hint=hint,
    )


def _where(urls: IndexUrls, name: NormalizedName) -> str:
    return ", ".join(urls(name)) or "the configured indexes"


PROBES = 32  # names looked up on the indexes for "did you mean", at most
_AFFIXES = ("python-", "py")
_SUFFIXES = ("-python", "-py")


def _did_you_mean(
    name: NormalizedName, roots: Sequence[Req], finder: Finder, known: Collection[str]
) -> str:
    """ " (did you mean numpy?)" from names at hand: the spec's other requirements, what
    their newest releases require, the names the existing lock pins; and, looked up on the
    same indexes (a page each, in parallel, `PROBES` at most): the name with or without a
    python-/-python/-py/py affix, with one letter dropped, or two neighbours swapped."""
    pool: set[str] = set(known)
    env = finder.target.marker_environment()
    for root in roots:
        if root.name == name or not _found(finder, root.name):
            continue
        pool.add(root.name)
        releases = finder.selection(root.name).releases
        if releases:
            try:
                metadata = finder.metadata(releases[0])
            except ReprolockError:  # a suggestion is not worth an error
                continue
            pool.update(canonicalize_name(r.name) for r in applying(metadata, env, None))
    texts = [f"{a}{name}" for a in _AFFIXES] + [f"{name}{s}" for s in _SUFFIXES]
    texts += [name.removeprefix(a) for a in _AFFIXES] + [name.removesuffix(s) for s in _SUFFIXES]
    if len(name) >= 4:  # one letter dropped, two neighbours swapped: typos
        texts += [name[:i] + name[i + 1 :] for i in range(len(name))]
        texts += [name[:i] + name[i + 1] + name[i] + name[i + 2 :] for i in range(len(name) - 1)]
    candidates = (canonicalize_name(t) for t in texts if t and t.strip("-._"))
    variants = [v for v in dict.fromkeys(candidates) if v != name][:PROBES]
    for variant in variants:
        finder.fetcher.page(variant)  # in parallel, ahead of the checks
    found: set[str] = {v for v in variants if _found(finder, v)}
    close = difflib.get_close_matches(name, sorted(pool - {name}), n=3, cutoff=0.75)
    suggested = sorted(found | set(close))
    if not suggested:
        return ""
    return " (did you mean " + " or ".join(suggested) + "?)"


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
    provider: PythonProvider,
    target: PythonTarget,
    constraints: Mapping[NormalizedName, SpecifierSet],
    reasons: Mapping[NormalizedName, str],
    urls: IndexUrls,
) -> Unsatisfiable:
    """The causes, bounded: `SHOWN_CAUSES` projects, each with at most `SHOWN_VERSIONS`
    versions of the projects that require it named (the rest counted)."""
    problems: list[Problem] = []
    by_name: dict[NormalizedName, list[RequirementInformation[Req, Candidate]]] = {}
    for cause in causes:
        by_name.setdefault(cause.requirement.name, []).append(cause)
    names = sorted(by_name, key=lambda n: (-len(by_name[n]), n))
    for name in sorted(names[:SHOWN_CAUSES]):
        message = _chains(by_name[name]) + ". "
        if not _found(finder, name):
            message += f"{name} was not found on {_where(urls, name)}."
        else:
            selection = finder.selection(name)
            reqs = [c.requirement for c in by_name[name]]
            installable = _installable(provider, selection, [r.specifier for r in reqs])
            shown = ", ".join(str(v) for v in installable[:6])
            more = f" and {len(installable) - 6:,} more" if len(installable) > 6 else ""
            message += f"Installable versions for this target: {shown or 'none'}{more}."
            why = _rejections(selection, reqs)
            if why:
                message += " " + why
        if name in constraints:
            because = reasons.get(name, "of the CUDA stack")
            message += f" Only {name}{_bounded(str(constraints[name]))} is allowed: {because}."
        problems.append(Problem(message=message))
    if len(names) > SHOWN_CAUSES:
        rest = len(names) - SHOWN_CAUSES
        problems.append(Problem(message=f"… and {rest:,} more projects in the conflict."))
    return Unsatisfiable(
        f"no set of Python packages satisfies every requirement for {target}:",
        problems=problems,
        hint="Relax the conflicting requirements, or run `reprolock explain NAME` for the "
        "versions considered and why each was rejected.",
    )


def _chains(causes: Sequence[RequirementInformation[Req, Candidate]]) -> str:
    """``the spec requires X; p==2.0, ==1.9 and 1,345 more require X>=1`` — the requirement
    chains grouped by requiring project and requirement, at most `SHOWN_VERSIONS` versions
    named in all."""
    groups: dict[tuple[str, str], set[Version]] = {}
    for c in causes:
        key = (c.parent.key if c.parent is not None else "", str(c.requirement))
        versions = groups.setdefault(key, set())
        if c.parent is not None:
            versions.add(c.parent.version)
    parts: list[str] = []
    budget = SHOWN_VERSIONS
    hidden = 0
    for (parent, requirement), versions in sorted(groups.items(), key=lambda g: (-len(g[1]), g[0])):
        if not parent:
            parts.append(f"the spec requires {requirement}")
            continue
        if budget <= 0:
            hidden += len(versions)
            continue
        ordered = sorted(versions, reverse=True)
        shown = ordered[: min(SHOWN_PER_GROUP, budget)]
        budget -= len(shown)
        named = f"{parent}==" + ", ==".join(str(v) for v in shown)
        if len(ordered) > len(shown):
            named += f" and {len(ordered) - len(shown):,} more versions"
        verb = "requires" if len(ordered) == 1 else "require"
        parts.append(f"{named} {verb} {requirement}")
    parts.sort(key=lambda p: (not p.startswith("the spec"), p))
    if hidden:
        parts.append(f"… and {hidden:,} more versions of other projects")
    return "; ".join(parts)


def _bounded(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _installable(
    provider: PythonProvider, selection: Selection, specifiers: Sequence[SpecifierSet]
) -> list[Version]:
    """The installable versions worth naming: pre-releases only where the policy allows
    them for these requirements (``if-necessary``: the project has no final release)."""
    versions = [r.version for r in selection.releases]
    finals = any(not v.is_prerelease for v in versions)
    if provider.prereleases_allowed(specifiers, finals):
        return versions
    return [v for v in versions if not v.is_prerelease]


def _explain_dead_end(
    end: DeadEnd, finder: Finder, provider: PythonProvider, target: PythonTarget, urls: IndexUrls
) -> Unsatisfiable:
    """The resolver gave up walking down a project whose versions all need something that
    cannot be installed: say what, and why, in a few lines."""
    needs = []
    for text, count in sorted(end.dead.items(), key=lambda d: (-d[1], d[0]))[:3]:
        req = end.requirements[text]
        if _found(finder, req.name):
            why = why_unusable(
                req.name,
                req.specifier,
                finder.selection(req.name),
                found=True,
                target=str(target),
            )
        else:
            why = f"is not on {_where(urls, req.name)}"
        needs.append(f"{text} ({count:,} of them), which {why}")
    more = len(end.dead) - len(needs)
    listed = "; ".join(needs) + (f"; and {more:,} more" if more > 0 else "")
    return Unsatisfiable(
        f"no set of Python packages satisfies every requirement for {target}: the resolver "
        f"stopped after {end.tried:,} versions of {end.name} (of the {end.total:,} that fit "
        f"the other requirements), each needing a project with no installable release: "
        f"{listed}. Older versions were not tried.",
        hint=f"Require a version of {end.name} that does without it, or publish a wheel of "
        "what it needs on a [[python.index]]; `reprolock explain "
        f"{end.name}` lists the versions.",
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
