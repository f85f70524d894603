"""The resolvelib provider: requirements and candidates for one target.

Preference order (which undecided project resolvelib works on next), the
first difference wins:

1. projects pinned with ``==`` (nothing to choose);
2. not a known culprit (`PythonProvider.culprits`): a project whose pin has ruled out every
   candidate of another is pinned after the others in the next attempt, so that the others'
   requirements reach it first and rule out its releases that conflict with them (each a
   rejected candidate) rather than its pin ruling them out (each a conflict to backjump
   over: resolvelib undoes the most recent pin connected to the conflict, rarely the
   culprit, see `resolve.Restart`);
3. projects named in a backtracking cause (settle conflicts early);
4. projects the spec asks for directly;
5. projects with fewer candidates left;
6. the name, for determinism.

`PythonProvider.narrow_requirement_selection` (resolvelib 1.1 and later) keeps only the
projects of the best of the first three tiers, working out the names in the causes once per
round, so that `get_preference` (called for each project it keeps) looks a name up in a set
rather than scanning every cause; with an older resolvelib `get_preference` scans them.

Candidates are offered newest first, except that a version pinned by the
existing lock comes first (minimal updates).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version
from resolvelib.providers import AbstractProvider
from resolvelib.structs import RequirementInformation

from reprolock.errors import InputError
from reprolock.resolve.python.finder import Finder
from reprolock.resolve.python.metadata import CoreMetadata, applying
from reprolock.resolve.python.select import Release, Selection
from reprolock.spec import PrereleasePolicy


@dataclass(frozen=True, slots=True)
class Req:
    """One requirement on one identifier: a project, or a project with one extra."""

    name: NormalizedName
    extra: NormalizedName | None
    specifier: SpecifierSet
    parent: Candidate | None = field(default=None, compare=False)
    text: str = field(default="", compare=False)
    # Worked out once: resolvelib asks for them on every round.
    key: str = field(init=False, compare=False, repr=False)
    pinned: Version | None = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "key", self.name if self.extra is None else f"{self.name}[{self.extra}]"
        )
        object.__setattr__(self, "pinned", _pinned(self.specifier))

    def __str__(self) -> str:
        return self.text or f"{self.key}{self.specifier}"


def _pinned(specifier: SpecifierSet) -> Version | None:
    """The one version ``specifier`` allows when it is a single ``==``/``===`` without ``*``."""
    specs = list(specifier)
    if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
        return Version(specs[0].version)
    return None


@dataclass(frozen=True, slots=True)
class Candidate:
    name: NormalizedName
    extra: NormalizedName | None
    release: Release = field(compare=False)
    version: Version
    # How many candidates `find_matches` offered from this one to the end of its list: the
    # first candidate of a criterion knows how many it has (see `get_preference`).
    left: int = field(default=1, compare=False)

    @property
    def key(self) -> str:
        return self.name if self.extra is None else f"{self.name}[{self.extra}]"

    def __str__(self) -> str:
        return f"{self.key}=={self.version}"


def requirement_to_reqs(requirement: Requirement, parent: Candidate | None) -> list[Req]:
    """``foo[a,b]>=1`` → ``foo>=1``, ``foo[a]>=1``, ``foo[b]>=1``."""
    if requirement.url:
        where = f"{parent}" if parent else "the spec"
        raise InputError(
            f'"{requirement}" (from {where}) is a direct URL requirement; reprolock locks '
            "packages from indexes only.",
            hint="Publish the wheel to an index and list it in [[python.index]].",
        )
    name = canonicalize_name(requirement.name)
    text = str(requirement).split(";")[0].strip()
    reqs = [Req(name, None, requirement.specifier, parent, text)]
    reqs.extend(
        Req(name, canonicalize_name(extra), requirement.specifier, parent, text)
        for extra in sorted(requirement.extras)
    )
    return reqs


BACKTRACK_AHEAD = 8  # releases fetched ahead at most once the resolver walks down a project
PATCH_AHEAD = 32  # releases fetched at once that the patches already rule out (at most)
# Versions of one project the resolver may reject for a dependency that has no installable
# release at all before it stops walking down: tfds-nightly has 1,347 versions, every one
# needing the sdist-only promise; trying each costs a metadata read (two minutes, cold).
DEAD_END_LIMIT = 100


class DeadEnd(Exception):
    """The resolver walked down ``DEAD_END_LIMIT`` versions of ``name``, each needing a
    project with no installable release for what it asks (``dead``: requirement text →
    how many of the versions asked for it)."""

    def __init__(self, name: NormalizedName, tried: int, total: int, dead: dict[str, int]):
        super().__init__(name)
        self.name = name
        self.tried = tried
        self.total = total
        self.dead = dead
        self.requirements: dict[str, Req] = {}


# Requirements a release should have declared and did not (e.g. torchaudio 2.11.0 names no
# torch): the stack solver adds them from the matrices.
Patches = Callable[[NormalizedName, Version], Sequence[Requirement]]


class PythonProvider(AbstractProvider[Req, Candidate, str]):
    def __init__(
        self,
        finder: Finder,
        *,
        prerelease: PrereleasePolicy,
        preferred: Mapping[NormalizedName, Version],
        direct: Iterable[str],
        constraints: Mapping[NormalizedName, SpecifierSet] | None = None,
        patches: Patches | None = None,
        roots: Iterable[Req] = (),
    ) -> None:
        self.finder = finder
        self.constraints = dict(constraints or {})
        self.patches = patches
        self.prerelease = prerelease
        self.preferred = dict(preferred)
        self.direct = frozenset(direct)
        self.env = finder.target.marker_environment()
        self.extras_missing: list[str] = []
        # per project: the versions rejected for a dependency with nothing installable
        self.dead_ends: dict[NormalizedName, dict[Version, Req]] = {}
        self.offered: dict[str, list[Release]] = {}
        # the version a project's requirements pin it to with ``==`` when last matched, and
        # the pins of the spec's own requirements (which no backtracking takes away)
        self._pinned: dict[NormalizedName, Version] = {}
        found: dict[NormalizedName, set[Version]] = {}
        for req in roots:
            if req.pinned is not None:
                found.setdefault(req.name, set()).add(req.pinned)
        self._root_pins = {name: next(iter(v)) for name, v in found.items() if len(v) == 1}
        # projects whose pins ruled out every candidate of another (`find_culprits`),
        # pinned after the others (the resolver adds to them before a new attempt)
        self.culprits: frozenset[str] = frozenset()
        # the backtrack causes `narrow_requirement_selection` saw last, their names, and
        # whether the projects it kept are pinned with ``==``
        self._narrowed: (
            tuple[Sequence[RequirementInformation[Req, Candidate]], frozenset[str], bool] | None
        ) = None
        self._allows: dict[int, tuple[SpecifierSet, dict[int, tuple[Version, bool]]]] = {}
        self._applies: dict[
            tuple[int, NormalizedName | None], tuple[CoreMetadata, tuple[Requirement, ...]]
        ] = {}
        self._by_specifier: dict[
            tuple[int, int], tuple[SpecifierSet, Selection, list[Release], frozenset[int]]
        ] = {}

    # -- identity and preference ----------------------------------------------------
    def identify(self, requirement_or_candidate: Req | Candidate) -> str:
        return requirement_or_candidate.key

    def find_culprits(
        self, information: Iterable[RequirementInformation[Req, Candidate]], rejected: Candidate
    ) -> set[str]:
        """The projects whose requirement, among ``information`` (a criterion that no release
        fits once ``rejected``'s requirement joined it), no release fits together with
        ``rejected``'s own: the pins that ruled ``rejected`` out."""
        infos = list(information)
        new = [i.requirement for i in infos if i.parent is rejected]
        found: set[str] = set()
        for req in new:
            selection = self.finder.selection(req.name)
            for info in infos:
                parent = info.parent
                if parent is None or parent is rejected or parent.key == rejected.key:
                    continue
                if not self.matching(
                    req.name, [req.specifier, info.requirement.specifier], selection
                ):
                    found.add(parent.key)
        return found

    def _cause_names(
        self, backtrack_causes: Sequence[RequirementInformation[Req, Candidate]]
    ) -> frozenset[str]:
        """The projects named in ``backtrack_causes``: their requirements' and parents'."""
        names = {c.requirement.key for c in backtrack_causes}
        names.update(c.parent.key for c in backtrack_causes if c.parent is not None)
        return frozenset(names)

    def narrow_requirement_selection(
        self,
        identifiers: Iterable[str],
        resolutions: Mapping[str, Candidate],
        candidates: Mapping[str, Iterator[Candidate]],
        information: Mapping[str, Iterator[RequirementInformation[Req, Candidate]]],
        backtrack_causes: Sequence[RequirementInformation[Req, Candidate]],
    ) -> Iterable[str]:
        # The first three tiers of `get_preference`, worked out once for all the projects:
        # what is left over is what `get_preference` would put after them anyway.
        causes = self._cause_names(backtrack_causes)
        names = list(identifiers)
        pinned = [n for n in names if any(i.requirement.pinned is not None for i in information[n])]
        # for this round's `get_preference`: what is kept is pinned, or none of it is
        self._narrowed = (backtrack_causes, causes, bool(pinned))
        names = pinned or names
        culprits = self.culprits
        if culprits:
            names = [n for n in names if n not in culprits] or names
        if pinned:
            return names
        return [n for n in names if n in causes] or names

    def get_preference(
        self,
        identifier: str,
        resolutions: Mapping[str, Candidate],
        candidates: Mapping[str, Iterator[Candidate]],
        information: Mapping[str, Iterator[RequirementInformation[Req, Candidate]]],
        backtrack_causes: Sequence[RequirementInformation[Req, Candidate]],
    ) -> tuple[object, ...]:
        known = self._narrowed
        if known is not None and known[0] is backtrack_causes:  # narrowed this round
            _, names, pinned = known
        else:  # resolvelib before 1.1 does not narrow: work them out here
            names = self._cause_names(backtrack_causes)
            pinned = any(i.requirement.pinned is not None for i in information[identifier])
        cause = identifier in names
        culprit = identifier in self.culprits
        direct = identifier in self.direct
        if pinned:
            count = 0
        else:
            # A criterion's candidates are the list `find_matches` returned, as it returned
            # it; its first candidate carries the list's length (counting costs a walk
            # over hundreds of candidates, on every round, for every undecided project).
            first = next(candidates[identifier], None)
            count = 0 if first is None else first.left
        return (not pinned, culprit, not cause, not direct, count, identifier)

    # -- candidates --------------------------------------------------------------------
    def find_matches(
        self,
        identifier: str,
        requirements: Mapping[str, Iterator[Req]],
        incompatibilities: Mapping[str, Iterator[Candidate]],
    ) -> list[Candidate]:
        reqs = list(requirements[identifier])
        name, extra = reqs[0].name, reqs[0].extra
        bad = {c.version for c in incompatibilities[identifier]}
        selection = self.finder.selection(name)
        releases = self.matching(
            name,
            [r.specifier for r in reqs],
            selection,
            bad,
            pins={p for r in reqs if (p := r.pinned) is not None},
        )
        pins = {p for r in reqs if (p := r.pinned) is not None}
        if len(pins) == 1:
            self._pinned[name] = next(iter(pins))
        if releases and self.patches is not None:
            self._prefetch_past_patches(name, releases)
        elif releases and not releases[0].is_sdist:
            self.finder.fetcher.metadata(releases[0].wheel)
        self.offered[identifier] = releases
        total = len(releases)
        return [
            Candidate(name, extra, r, r.version, total - position)
            for position, r in enumerate(releases)
        ]

    def _prefetch_past_patches(self, name: NormalizedName, releases: Sequence[Release]) -> None:
        """Fetch at once the metadata of the releases the resolver will walk past: the
        newest ones whose patches (the companion table) need another version of a project
        that a requirement pins with ``==`` (torchaudio 2.11 for a torch==2.5.1 that a
        dependency asks for), and the first one they do not rule out.  Those ruled out by
        a pin of the spec's own need no metadata (`get_dependencies`).  Only fetching: the
        resolver still decides."""
        for release in releases[:PATCH_AHEAD]:
            if self._ruled_out_by_patches(name, release.version, self._root_pins):
                continue  # rejected without its metadata (`get_dependencies`)
            if not release.is_sdist:
                self.finder.fetcher.metadata(release.wheel)
            if not self._ruled_out_by_patches(name, release.version):
                return

    def _ruled_out_by_patches(
        self,
        name: NormalizedName,
        version: Version,
        pins: Mapping[NormalizedName, Version] | None = None,
    ) -> bool:
        """Whether the companion table says ``name`` ``version`` needs another version of a
        project that a requirement pins with ``==`` (so the resolver will reject it); of a
        project in ``pins`` when given, else in the spec or any requirement last matched."""
        if self.patches is None:
            return False
        for requirement in self.patches(name, version):
            key = canonicalize_name(requirement.name)
            if pins is not None:
                pin = pins.get(key)
            else:
                pin = self._pinned.get(key) or self._root_pins.get(key)
            if pin is not None and not requirement.specifier.contains(pin, prereleases=True):
                return True
        return False

    def _fetch_ahead(self, offered: Sequence[Release], position: int) -> None:
        """Fetch the metadata of the releases after ``offered[position]``, the one the
        resolver tries now, having rejected those before it.

        The window doubles with each rejection (1, 2, 4, … up to `BACKTRACK_AHEAD`): one
        release too new is common (accelerate 1.16 needs torch>=2.6 beside torch==2.5.1) and
        the next one usually fits, while a long walk down soon has its releases asked for
        together.  Releases the companion table ruled out do not count as rejections: the
        first one it allows is the one expected to fit (torchaudio 2.5.1 for torch 2.5.1)."""
        rejected = position
        while rejected > 0 and self._ruled_out_by_patches(
            offered[position - rejected].name, offered[position - rejected].version
        ):
            rejected -= 1
        if rejected <= 0:
            return
        window = min(BACKTRACK_AHEAD, 1 << (rejected - 1))
        for release in offered[position + 1 : position + 1 + window]:
            if not release.is_sdist:  # built only when asked for
                self.finder.fetcher.metadata(release.wheel)

    def matching(
        self,
        name: NormalizedName,
        specifiers: Sequence[SpecifierSet],
        selection: Selection,
        bad: AbstractSet[Version] = frozenset(),
        pins: AbstractSet[Version] = frozenset(),
    ) -> list[Release]:
        """Releases allowed by every specifier and the policies, best first."""
        constraint = self.constraints.get(name)
        if constraint is not None:
            specifiers = [*specifiers, constraint]
        if specifiers:
            allowed = sorted((self._allowed(s, selection) for s in specifiers), key=len)
            shortest, rest = allowed[0], [ids for _, ids in allowed[1:]]
            releases = shortest[0]
        else:
            releases, rest = selection.releases, []
        found = [
            r
            for r in releases
            if (not rest or all(id(r) in ids for ids in rest))
            and r.version not in bad
            and (r.yanked is None or r.version in pins)
        ]
        final = [r for r in found if not r.version.is_prerelease]
        if len(final) < len(found) and not self.prereleases_allowed(specifiers, bool(final)):
            found = final
        preferred = self.preferred.get(name)
        if preferred is not None:
            found.sort(key=lambda r: r.version != preferred)  # stable: newest-first otherwise
        return found

    def prereleases_allowed(self, specifiers: Sequence[SpecifierSet], finals: bool) -> bool:
        """Whether pre-releases may be chosen for a project with these requirements (and
        ``finals``: whether a final release fits them), by `python.prerelease`: a specifier
        naming a pre-release allows them (``explicit``), none fitting otherwise does
        (``if-necessary``), as packaging's `SpecifierSet.filter` does by default."""
        policy = self.prerelease
        explicit = any(s.prereleases for s in specifiers)
        if policy is PrereleasePolicy.ALLOW:
            return True
        if policy is PrereleasePolicy.DISALLOW:
            return False
        if policy is PrereleasePolicy.EXPLICIT:
            return explicit
        if policy is PrereleasePolicy.IF_NECESSARY:
            return not finals
        return explicit or not finals

    def _allowed(
        self, specifier: SpecifierSet, selection: Selection
    ) -> tuple[list[Release], frozenset[int]]:
        """The releases of ``selection`` that ``specifier`` allows (in order, and their ids),
        worked out once per specifier and selection: resolvelib asks again with every new
        requirement on the project.  Keyed by identity (hashing a SpecifierSet costs more
        than the check); the entry keeps both alive, so neither id is reused meanwhile."""
        key = (id(specifier), id(selection))
        found = self._by_specifier.get(key)
        if found is None:
            releases = self._filter(specifier, selection.releases)
            found = (specifier, selection, releases, frozenset(id(r) for r in releases))
            self._by_specifier[key] = found
        return found[2], found[3]

    def _filter(self, specifier: SpecifierSet, releases: Sequence[Release]) -> list[Release]:
        """The ``releases`` ``specifier`` allows, in order: packaging's own check, over all
        of them at once (``SpecifierSet.filter``, half the cost of a ``contains`` per
        version: 40,000 checks in a kitchen-sink lock).  The answers are remembered for
        `allows` and `is_satisfied_by`."""
        versions = [r.version for r in releases]
        passed = set(specifier.filter(versions, prereleases=True))  # (equal, not the same)
        entry = self._allows.get(id(specifier))
        if entry is None:
            entry = self._allows[id(specifier)] = (specifier, {})
        memo = entry[1]
        allowed = []
        for release in releases:
            version = release.version
            found = version in passed
            memo[id(version)] = (version, found)
            if found:
                allowed.append(release)
        return allowed

    def choose(
        self, name: NormalizedName, specifier: SpecifierSet, selection: Selection
    ) -> Release | None:
        """The release the resolver will most likely try first (for prefetching): past
        those the companion table rules out beside a pin of the spec's."""
        found = self.matching(name, [specifier], selection)
        return next(
            (r for r in found if not self._ruled_out_by_patches(name, r.version, self._root_pins)),
            None,
        )

    def is_satisfied_by(self, requirement: Req, candidate: Candidate) -> bool:
        # resolvelib asks this for every requirement of every pinned project on every round
        # (quadratic in the number of projects): the memo is read here without another call.
        entry = self._allows.get(id(requirement.specifier))
        if entry is not None:
            found = entry[1].get(id(candidate.version))
            if found is not None:
                return found[1]
        return self.allows(requirement.specifier, candidate.version)

    def allows(self, specifier: SpecifierSet, version: Version) -> bool:
        """``specifier.contains(version)``, memoized: resolvelib asks the same often.

        Keyed by the identities of both (hashing a SpecifierSet canonicalizes every clause,
        which costs more than the check); the entries keep both alive, so no id is reused
        while they exist.
        """
        entry = self._allows.get(id(specifier))
        if entry is None:
            entry = self._allows[id(specifier)] = (specifier, {})
        found = entry[1].get(id(version))
        if found is None:
            found = (version, specifier.contains(version, prereleases=True))
            entry[1][id(version)] = found
        return found[1]

    # -- dependencies -------------------------------------------------------------------
    def get_dependencies(self, candidate: Candidate) -> list[Req]:
        # resolvelib tries the offered candidates in order; once the first has failed it
        # is walking down the list, so fetch ahead in parallel.
        offered = self.offered.get(candidate.key, [])
        position = next((i for i, r in enumerate(offered) if r is candidate.release), 0)
        if candidate.extra is None and self._ruled_out_by_patches(
            candidate.name, candidate.version, self._root_pins
        ):
            # The table's requirement alone conflicts with a pin of the spec's own (no
            # backtracking removes it): the resolver rejects this release on it, so its
            # metadata is neither needed nor fetched (torchaudio 2.11 … 2.6 for torch==2.5.1).
            assert self.patches is not None
            return [
                req
                for requirement in self.patches(candidate.name, candidate.version)
                for req in requirement_to_reqs(requirement, candidate)
            ]
        if self._ruled_out_by_patches(candidate.name, candidate.version):
            # Ruled out beside a pin that a dependency asks for: the releases the resolver
            # will walk past, and the first one the table allows, are fetched together.
            self._prefetch_past_patches(candidate.name, offered[position:])
        elif position > 0:
            self._fetch_ahead(offered, position)
        metadata = self.finder.metadata(candidate.release)
        deps: list[Req] = []
        if candidate.extra is None:
            for requirement in self._applying(metadata, None):
                deps.extend(requirement_to_reqs(requirement, candidate))
            if self.patches is not None:
                for requirement in self.patches(candidate.name, candidate.version):
                    deps.extend(requirement_to_reqs(requirement, candidate))
        else:
            pin = SpecifierSet(f"=={candidate.version}")
            deps.append(Req(candidate.name, None, pin, candidate, f"{candidate.name}{pin}"))
            if candidate.extra not in metadata.provides_extra:
                self.extras_missing.append(
                    f'{candidate.name} {candidate.version} has no extra "{candidate.extra}"'
                )
            for requirement in self._applying(metadata, candidate.extra):
                deps.extend(requirement_to_reqs(requirement, candidate))
        if position > 0 and candidate.extra is None:
            self._note_dead_end(candidate, deps, len(offered))
        self.finder.prefetch((d.name, d.specifier) for d in deps)
        return deps

    def _note_dead_end(self, candidate: Candidate, deps: Sequence[Req], total: int) -> None:
        """Remember when ``candidate`` needs a project with nothing installable for what it
        asks (the resolver will reject it); `DeadEnd` once a project has had too many such
        versions.  Checked only while the resolver walks down a project's versions."""
        for dep in deps:
            if dep.extra is not None or dep.name == candidate.name:
                continue
            pins = frozenset() if dep.pinned is None else frozenset({dep.pinned})
            selection = self.finder.selection(dep.name)
            if self.matching(dep.name, [dep.specifier], selection, pins=pins):
                continue
            dead = self.dead_ends.setdefault(candidate.name, {})
            dead[candidate.version] = dep
            if len(dead) >= DEAD_END_LIMIT:
                counts: dict[str, int] = {}
                end = DeadEnd(candidate.name, len(dead), total, counts)
                for req in dead.values():
                    counts[str(req)] = counts.get(str(req), 0) + 1
                    end.requirements.setdefault(str(req), req)
                raise end
            return

    def _applying(
        self, metadata: CoreMetadata, extra: NormalizedName | None
    ) -> tuple[Requirement, ...]:
        """The requirements of ``metadata`` that apply on the target: without an extra,
        those whose marker holds; with one, those whose marker holds only with it.
        Worked out once per metadata and extra (a candidate's dependencies are asked for
        again when the resolver backtracks over it)."""
        key = (id(metadata), extra)
        found = self._applies.get(key)
        if found is None:
            found = (metadata, applying(metadata, self.env, extra))
            self._applies[key] = found  # the entry keeps the id in use
        return found[1]
