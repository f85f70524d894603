"""Why a project's newer versions were not chosen: the first rule that excluded each.

After a resolution, every version of a locked project newer than the chosen one was passed
over for a reason.  Some are the spec's own decisions — a specifier, a companion bound of
the CUDA stack, exclude-newer, a yank, the pre-release policy — and some are not: the newer
version has no file the target can use (no wheel for its tags, only an sdist, a
Requires-Python that excludes it), or it needs a dependency that has none.  The latter is
a *silent downgrade* unless said: `downgrades` finds them for `lock`, `Judge.first_rule`
explains each version for `explain`.

The work is bounded: only projects whose chosen version is below the newest version their
requirements allow are looked at, and of those only the newest such version has its
dependencies checked, a few levels deep at most.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from reprolock.resolve.python.finder import Finder
from reprolock.resolve.python.metadata import applying
from reprolock.resolve.python.provider import Patches, PythonProvider, Req
from reprolock.resolve.python.select import Refusal, Release, Selection, version_key

DEPTH = 3  # levels of dependencies checked below a newer version
FANOUT = 8  # dependencies followed per level (those the lock does not satisfy)
READS = 24  # metadata files read, at most, to check one newer version's dependencies
EXPLAIN_DEEP = 40  # installable newer versions whose dependencies `explain` checks


class Rule(StrEnum):
    """The first rule that kept a version out, in the order they are tried."""

    SPECIFIER = "specifier"  # a requirement on the project excludes it
    COMPANION = "companion-bound"  # the CUDA stack's bounds (torch, torchvision, torchaudio)
    EXCLUDE_NEWER = "exclude-newer"
    YANKED = "yanked"
    PRERELEASE = "prerelease"  # python.prerelease does not allow it
    REQUIRES_PYTHON = "requires-python"
    NO_WHEEL = "no-wheel"
    SDIST_ONLY = "sdist-only"
    UNHASHED = "unhashed"
    DEPENDENCY = "dependency"  # a dependency of it has no usable file
    NOT_CHOSEN = "not-chosen"  # installable: the resolver chose otherwise

    @property
    def silent(self) -> bool:
        """A downgrade for this reason is not the spec's decision: `lock` says so."""
        return self in _SILENT


_SILENT = frozenset(
    {Rule.REQUIRES_PYTHON, Rule.NO_WHEEL, Rule.SDIST_ONLY, Rule.UNHASHED, Rule.DEPENDENCY}
)
_BY_REFUSAL = {
    Refusal.EXCLUDE_NEWER: Rule.EXCLUDE_NEWER,
    Refusal.REQUIRES_PYTHON: Rule.REQUIRES_PYTHON,
    Refusal.NO_WHEEL: Rule.NO_WHEEL,
    Refusal.SDIST_ONLY: Rule.SDIST_ONLY,
    Refusal.UNHASHED: Rule.UNHASHED,
}
# The order in which file refusals are named when a version has several.
_FILE_ORDER = (Refusal.EXCLUDE_NEWER, Refusal.REQUIRES_PYTHON, Refusal.UNHASHED)


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    version: Version
    rule: Rule
    text: str  # for `explain`: "excluded by numpy>=1.26 (from the spec)"
    short: str = ""  # for a downgrade line: "has only an sdist"


@dataclass(frozen=True, slots=True, kw_only=True)
class Downgrade:
    """A locked version below the newest its requirements allow, for want of a usable file."""

    name: NormalizedName
    version: Version  # chosen
    newest: Version  # the newest version the requirements allow
    reason: str  # what keeps ``newest`` out: "needs antlr4-python3-runtime==4.9.*, which …"

    def line(self) -> str:
        return f"{self.name} {self.version} chosen; {self.newest} {self.reason}"


def known_versions(selection: Selection) -> list[Version]:
    """Every version the index lists for the project (installable or not), newest first."""
    found = {r.version for r in selection.releases} | set(selection.rejected)
    return sorted(found, key=version_key, reverse=True)


def why_unusable(
    name: NormalizedName,
    specifier: SpecifierSet,
    selection: Selection,
    *,
    found: bool,
    target: str,
) -> str:
    """Why no release of ``name`` allowed by ``specifier`` can be installed, as the end of
    "needs X, which …": not on the index, no such version, or the newest one's files."""
    if not found:
        return "is not on any configured index"
    versions = [v for v in known_versions(selection) if specifier.contains(v, prereleases=True)]
    if not versions:
        return "has no such version"
    newest = versions[0]
    installable = {r.version: r for r in selection.releases}
    if newest in installable:
        release = installable[newest]
        if release.yanked is not None:
            return f"has {newest} yanked"
        if newest.is_prerelease:
            return f"has only the pre-release {newest}"
        return f"has {newest}"  # installable (a conflict elsewhere, not a missing file)
    refusal = _first_refusal(selection, newest)
    if refusal is None:
        return f"has no usable file of {newest}"
    return _short(refusal, selection, newest, target)


def _first_refusal(selection: Selection, version: Version) -> Refusal | None:
    kinds = selection.refusals.get(version, [])
    for kind in _FILE_ORDER:
        if kind in kinds:
            return kind
    return kinds[0] if kinds else None


def _short(refusal: Refusal, selection: Selection, version: Version, target: str) -> str:
    if refusal is Refusal.SDIST_ONLY:
        return "has only an sdist"
    if refusal is Refusal.NO_WHEEL:
        return f"has no wheel for {target}"
    if refusal is Refusal.UNHASHED:
        return "has no sha256 on the index"
    text = selection.rejected[version][selection.refusals[version].index(refusal)]
    return text  # "requires Python >=3.12, the target is 3.11.0", exclude-newer's text


class Judge:
    """The first rule that excluded each version of a locked project, for one target's
    resolution: its requirements as resolved (``requirements``, by project), the pins,
    and the provider's policies (constraints, companion patches, pre-releases)."""

    def __init__(
        self,
        finder: Finder,
        provider: PythonProvider,
        *,
        pins: Mapping[NormalizedName, Version],
        requirements: Mapping[NormalizedName, Sequence[Req]],
        patches: Patches | None,
        reasons: Mapping[NormalizedName, str],
    ) -> None:
        self.finder = finder
        self.provider = provider
        self.pins = dict(pins)
        self.requirements = {n: tuple(r) for n, r in requirements.items()}
        self.patches = patches
        self.reasons = dict(reasons)
        self.target = str(finder.target)
        self.env = finder.target.marker_environment()
        self._releases: dict[NormalizedName, dict[Version, Release]] = {}
        self._pre: dict[NormalizedName, bool] = {}
        self._dead: dict[tuple[NormalizedName, Version, int], str | None] = {}
        self._reads = 0  # metadata files left to read for the current check
        self._starved = False  # the current check ran out of reads somewhere below

    # -- one version ----------------------------------------------------------------------
    def first_rule(self, name: NormalizedName, version: Version, *, deep: bool) -> Verdict:
        """The first rule that keeps ``version`` of ``name`` out; ``deep``: also check the
        dependencies of an installable one (fetches its metadata)."""
        selection = self.finder.selection(name)
        for req in self.requirements.get(name, ()):
            if not req.specifier.contains(version, prereleases=True):
                where = req.parent or "the spec"
                return Verdict(
                    version=version,
                    rule=Rule.SPECIFIER,
                    text=f"excluded by {req} (from {where})",
                )
        companion = self._companion(name, version)
        if companion is not None:
            return companion
        releases = self._releases.get(name)
        if releases is None:
            releases = self._releases[name] = {r.version: r for r in selection.releases}
        release = releases.get(version)
        refusals = selection.refusals.get(version, [])
        if release is None and Refusal.EXCLUDE_NEWER in refusals:
            return self._refused(selection, version, Refusal.EXCLUDE_NEWER)
        if release is not None and release.yanked is not None:
            pinned = any(r.pinned == version for r in self.requirements.get(name, ()))
            if not pinned:
                why = f": {release.yanked}" if release.yanked else ""
                return Verdict(version=version, rule=Rule.YANKED, text=f"yanked{why}")
        if version.is_prerelease and not self._prereleases_allowed(name, selection):
            return Verdict(
                version=version,
                rule=Rule.PRERELEASE,
                text=f'a pre-release, not allowed (python.prerelease = "{self.provider.prerelease}"'
                "; a requirement naming a pre-release allows them)",
            )
        if release is None:
            refusal = _first_refusal(selection, version)
            if refusal is None:
                return Verdict(version=version, rule=Rule.NO_WHEEL, text="no usable file")
            return self._refused(selection, version, refusal)
        if deep:
            self._reads = READS
            dependency = self._dead_dependency(release, depth=1)
            if dependency is not None:
                return Verdict(
                    version=version, rule=Rule.DEPENDENCY, text=dependency, short=dependency
                )
            conflict = self._conflict(release)
            if conflict is not None:
                return Verdict(
                    version=version,
                    rule=Rule.NOT_CHOSEN,
                    text=f"installable; not chosen: it needs {conflict}",
                )
        if not deep:
            text = "installable; its dependencies were not checked (explain checks the newest "
            text += f"{EXPLAIN_DEEP} installable versions)"
        elif self.provider.preferred.get(name) == self.pins.get(name):
            text = (
                "installable, and its dependencies have files; the existing lock's pin is kept "
                f"(minimal updates: `lock --upgrade-package {name}` tries newer)"
            )
        else:
            text = "installable, and its dependencies have files; not chosen: it conflicts "
            text += "with other locked requirements"
        return Verdict(version=version, rule=Rule.NOT_CHOSEN, text=text)

    def _refused(self, selection: Selection, version: Version, refusal: Refusal) -> Verdict:
        text = selection.rejected[version][selection.refusals[version].index(refusal)]
        return Verdict(
            version=version,
            rule=_BY_REFUSAL[refusal],
            text=text,
            short=_short(refusal, selection, version, self.target),
        )

    def _companion(self, name: NormalizedName, version: Version) -> Verdict | None:
        constraint = self.provider.constraints.get(name)
        if constraint is not None and not constraint.contains(version, prereleases=True):
            why = self.reasons.get(name, "its framework build")
            return Verdict(
                version=version,
                rule=Rule.COMPANION,
                text=f"excluded by a bound of the CUDA stack ({why}; `reprolock explain` "
                "shows the stack's decision)",
            )
        if self.patches is None:
            return None
        for requirement in self.patches(name, version):
            other = canonicalize_name(requirement.name)
            pinned = self.pins.get(other)
            if pinned is not None and not requirement.specifier.contains(pinned, prereleases=True):
                return Verdict(
                    version=version,
                    rule=Rule.COMPANION,
                    text=f"companion bound: {name} {version} goes with {requirement} "
                    f"(the companion table), and {other} {pinned} is locked",
                )
        return None

    def prereleases_allowed(self, name: NormalizedName) -> bool:
        """Whether the pre-release policy lets ``name``'s pre-releases be chosen."""
        return self._prereleases_allowed(name, self.finder.selection(name))

    def _prereleases_allowed(self, name: NormalizedName, selection: Selection) -> bool:
        found = self._pre.get(name)
        if found is None:
            specifiers = [r.specifier for r in self.requirements.get(name, ())]
            finals = any(
                not r.version.is_prerelease and all(s.contains(r.version) for s in specifiers)
                for r in selection.releases
            )
            found = self._pre[name] = self.provider.prereleases_allowed(specifiers, finals)
        return found

    # -- dependencies ---------------------------------------------------------------------
    def _dead_dependency(self, release: Release, *, depth: int) -> str | None:
        """ "needs X, which has only an sdist" when a requirement of ``release`` has no
        usable release (breadth first: its own requirements, then theirs, ``DEPTH`` levels
        at most); None when every one has."""
        key = (release.name, release.version, depth)
        if key in self._dead:
            return self._dead[key]
        if self._reads <= 0:
            self._starved = True  # the budget is spent: no answer
            return None
        self._reads -= 1
        starved, self._starved = self._starved, False
        found = self._dead_below(release, depth)
        if not self._starved:  # a complete answer: remembered for the other checks
            self._dead[key] = found
        self._starved = starved or self._starved
        return found

    def _dead_below(self, release: Release, depth: int) -> str | None:
        metadata = self.finder.metadata(release)
        followed: list[tuple[str, Release]] = []
        for requirement in sorted(applying(metadata, self.env, None), key=str):
            if requirement.url:
                continue
            name = canonicalize_name(requirement.name)
            pinned = self.pins.get(name)
            if pinned is not None and requirement.specifier.contains(pinned, prereleases=True):
                continue
            selection = self.finder.selection(name)
            usable = self.provider.matching(name, [requirement.specifier], selection)
            text = _requirement_text(requirement)
            if not usable:
                found = bool(selection.releases or selection.rejected) or self._listed(name)
                why = why_unusable(
                    name, requirement.specifier, selection, found=found, target=self.target
                )
                return f"needs {text}, which {why}"
            followed.append((text, usable[0]))
        if depth >= DEPTH:
            return None
        for text, dependency in followed[:FANOUT]:
            deeper = self._dead_dependency(dependency, depth=depth + 1)
            if deeper is not None:
                return f"needs {text}, whose {dependency.version} {deeper}"
        return None

    def _conflict(self, release: Release) -> str | None:
        """ "conflicting>=2, and conflicting 1.0 is locked (conflicting<2 from the spec)":
        the first requirement of ``release`` that the locked set does not satisfy."""
        for requirement in sorted(applying(self.finder.metadata(release), self.env, None), key=str):
            name = canonicalize_name(requirement.name)
            pinned = self.pins.get(name)
            if pinned is None or requirement.specifier.contains(pinned, prereleases=True):
                continue
            held = sorted(
                {f"{r} from {r.parent or 'the spec'}" for r in self.requirements.get(name, ())}
            )
            because = f" ({', '.join(held[:3])})" if held else ""
            return f"{_requirement_text(requirement)}, and {name} {pinned} is locked{because}"
        return None

    def _listed(self, name: NormalizedName) -> bool:
        index = self.finder.fetcher.index
        return bool(self.finder.fetcher.page_files(name) or index.other_files(name))

    # -- a whole project ------------------------------------------------------------------
    def newer(self, name: NormalizedName, *, deep: int = EXPLAIN_DEEP) -> list[Verdict]:
        """The first rule for every version newer than the chosen one, newest first; the
        dependencies of the first ``deep`` installable ones are checked."""
        chosen = self.pins.get(name)
        if chosen is None:
            return []
        selection = self.finder.selection(name)
        for release in [r for r in selection.releases if r.version > chosen][:deep]:
            self.finder.fetcher.metadata(release.wheel)  # in parallel, ahead of the checks
        out = []
        for version in known_versions(selection):
            if version <= chosen:
                break
            verdict = self.first_rule(name, version, deep=deep > 0)
            if verdict.rule in (Rule.DEPENDENCY, Rule.NOT_CHOSEN):
                deep -= 1
            out.append(verdict)
        return out

    def downgrade(self, name: NormalizedName) -> Downgrade | None:
        """The silent downgrade of ``name``, if it is one: the newest version that only a
        missing file keeps out (versions the spec's own rules exclude are skipped)."""
        chosen = self.pins.get(name)
        if chosen is None:
            return None
        selection = self.finder.selection(name)
        newest = selection.newest_listed()
        if newest is None or newest <= chosen:
            return None  # the common case, decided without explaining every version
        for version in known_versions(selection):
            if version <= chosen:
                return None
            verdict = self.first_rule(name, version, deep=True)
            if verdict.rule in (
                Rule.SPECIFIER,
                Rule.COMPANION,
                Rule.EXCLUDE_NEWER,
                Rule.YANKED,
                Rule.PRERELEASE,
            ):
                continue
            if not verdict.rule.silent:
                return None
            return Downgrade(name=name, version=chosen, newest=version, reason=verdict.short)
        return None

    def downgrades(self) -> list[Downgrade]:
        """Every silent downgrade among the pins, by name."""
        return [d for name in sorted(self.pins) if (d := self.downgrade(name)) is not None]


def _requirement_text(requirement: Requirement) -> str:
    """``name[extras]specifier``, without the marker."""
    return str(requirement).split(";", 1)[0].strip()
