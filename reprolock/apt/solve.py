"""An apt-like resolver: what ``apt-get install --no-install-recommends PKG…`` would install
on top of an image's dpkg status.

Like apt it does not search: each package has one *candidate* (the highest pin priority,
then the highest version, never older than the installed one), a dependency already
satisfied by what is installed or planned stays as it is, alternatives (``a | b``) are tried
in order, a virtual package goes to its real package if one exists, else to a provider
(installed or planned first, then the most important Priority, then the name sorting last —
apt's order, checked against apt-get). Pre-Depends count as Depends.
Upgrading a package upgrades the installed packages whose dependencies or Breaks it would
otherwise violate. The result is every package to install or upgrade, with the chain of
dependencies that brought it in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from reprolock.apt.debian import Group, Relation, compare, satisfies
from reprolock.apt.index import Candidate
from reprolock.errors import Problem, Unsatisfiable

_PRIORITY = {"required": 0, "important": 1, "standard": 2, "optional": 3, "extra": 4}


@dataclass(frozen=True, slots=True)
class Want:
    """A requested package: ``git`` or ``git=1:2.39.5-0+deb12u1``."""

    name: str
    version: str | None = None

    @classmethod
    def parse(cls, text: str) -> Want:
        name, _, version = text.partition("=")
        return cls(name.strip(), version.strip() or None)

    def __str__(self) -> str:
        return f"{self.name}={self.version}" if self.version else self.name


@dataclass(slots=True)
class AptPlan:
    install: dict[str, Candidate] = field(default_factory=dict)
    why: dict[str, tuple[str, ...]] = field(default_factory=dict)
    upgrades: dict[str, str] = field(default_factory=dict)  # name → installed version
    notes: list[str] = field(default_factory=list)

    def ordered(self) -> list[Candidate]:
        return [self.install[n] for n in sorted(self.install)]


def _group_text(group: Group) -> str:
    return " | ".join(str(r) for r in group)


class Universe:
    """What the archives offer and what the image has installed, for one architecture."""

    def __init__(
        self, available: Iterable[Candidate], installed: Iterable[Candidate], arch: str
    ) -> None:
        self.arch = arch
        self.versions: dict[str, list[Candidate]] = {}
        for c in available:
            self.versions.setdefault(c.name, []).append(c)
        for name, found in self.versions.items():
            found.sort(key=lambda c: (c.pin, _VersionKey(c.version)), reverse=True)
            # One entry per version: the first archive listing it wins, as in apt.
            unique: dict[str, Candidate] = {}
            for c in found:
                unique.setdefault(c.version, c)
            self.versions[name] = list(unique.values())
        self.installed = {c.name: c for c in installed if c.architecture in (arch, "all")}
        self._providers: dict[str, list[Candidate]] | None = None

    def candidate(self, name: str) -> Candidate | None:
        """apt's candidate: the best pinned version, unless the installed one is newer."""
        found = self.versions.get(name)
        if not found:
            return None
        best = found[0]
        installed = self.installed.get(name)
        if installed is not None and compare(installed.version, best.version) > 0:
            return None
        return best

    def version(self, name: str, version: str) -> Candidate | None:
        return next((c for c in self.versions.get(name, ()) if c.version == version), None)

    def providers(self, name: str) -> list[Candidate]:
        """Candidates that Provide the virtual package ``name``."""
        if self._providers is None:
            self._providers = {}
            for pkg in self.versions:
                cand = self.candidate(pkg)
                if cand is None:
                    continue
                for provided, _ in cand.provides:
                    self._providers.setdefault(provided, []).append(cand)
        return self._providers.get(name, [])


class _VersionKey:
    """A sort key for Debian versions."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __lt__(self, other: _VersionKey) -> bool:
        return compare(self.text, other.text) < 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _VersionKey) and compare(self.text, other.text) == 0

    def __hash__(self) -> int:
        return hash(self.text)


class _Solver:
    def __init__(self, universe: Universe, target: str) -> None:
        self.u = universe
        self.target = target
        self.plan = AptPlan()

    # -- state -----------------------------------------------------------------------------
    def current(self, name: str) -> Candidate | None:
        return self.plan.install.get(name) or self.u.installed.get(name)

    def _arch_ok(self, pkg: Candidate, rel: Relation) -> bool:
        if rel.archqual == "any":
            return pkg.multi_arch == "allowed" or pkg.architecture == "all"
        return True

    def satisfied(self, rel: Relation) -> bool:
        pkg = self.current(rel.name)
        if (
            pkg is not None
            and self._arch_ok(pkg, rel)
            and satisfies(pkg.version, rel.op, rel.version)
        ):
            return True
        for holder in (*self.plan.install.values(), *self.u.installed.values()):
            if self.current(holder.name) is not holder:
                continue  # an installed package that is being upgraded
            for provided, version in holder.provides:
                if provided == rel.name and (
                    rel.op is None
                    or (version is not None and satisfies(version, rel.op, rel.version))
                ):
                    return True
        return False

    def choose(self, rel: Relation) -> Candidate | None:
        cand = self.u.candidate(rel.name)
        if (
            cand is not None
            and satisfies(cand.version, rel.op, rel.version)
            and self._arch_ok(cand, rel)
        ):
            return cand
        providers = [
            p
            for p in self.u.providers(rel.name)
            if rel.op is None
            or any(
                name == rel.name and v is not None and satisfies(v, rel.op, rel.version)
                for name, v in p.provides
            )
        ]
        if not providers:
            return None
        # As apt 2.6 does (checked against apt-get in the tests): an installed or planned
        # provider first, then the most important Priority, then the name sorting last.
        providers.sort(key=lambda p: p.name, reverse=True)
        providers.sort(key=lambda p: (self.current(p.name) is None, _PRIORITY.get(p.priority, 5)))
        return providers[0]

    # -- adding ----------------------------------------------------------------------------
    def mark(self, cand: Candidate, chain: tuple[str, ...]) -> bool:
        """Plan ``cand`` without its dependencies; False when nothing changes."""
        planned = self.plan.install.get(cand.name)
        if planned is not None:
            if planned.version != cand.version:
                raise self._fail(
                    f"{cand.name} is needed as {planned.version} and as {cand.version}",
                    chain,
                )
            return False
        installed = self.u.installed.get(cand.name)
        if installed is not None:
            if installed.version == cand.version:
                return False
            self.plan.upgrades[cand.name] = installed.version
        self.plan.install[cand.name] = cand
        self.plan.why[cand.name] = chain
        return True

    def add(self, cand: Candidate, chain: tuple[str, ...]) -> None:
        if self.mark(cand, chain):
            self.settle(cand, chain)

    def settle(self, cand: Candidate, chain: tuple[str, ...]) -> None:
        """Plan what ``cand`` depends on, and clear what it breaks."""
        for group in (*cand.pre_depends, *cand.depends):
            self.need(group, cand, chain)
        self._breaks(cand, chain)

    def need(self, group: Group, parent: Candidate, chain: tuple[str, ...]) -> None:
        if any(self.satisfied(rel) for rel in group):
            return
        step = f"{parent.name} {parent.version} depends on {_group_text(group)}"
        for rel in group:
            chosen = self.choose(rel)
            if chosen is not None:
                self.add(chosen, (*chain, step))
                return
        raise self._fail(f"{step}, {self._unavailable(group)}", chain)

    def _unavailable(self, group: Group) -> str:
        parts = []
        for rel in group:
            found = self.u.versions.get(rel.name)
            installed = self.u.installed.get(rel.name)
            if found:
                have = ", ".join(f"{c.version} ({c.suite})" for c in found[:3])
                parts.append(f"the archives have {rel.name} {have}")
            elif installed is not None:
                parts.append(f"{rel.name} {installed.version} is installed")
            elif self.u.providers(rel.name):
                parts.append(
                    f"{rel.name} is virtual and no provider fits "
                    f"({', '.join(p.name for p in self.u.providers(rel.name))})"
                )
            else:
                parts.append(f"no archive has {rel.name}")
        return "but " + "; ".join(parts)

    def _breaks(self, cand: Candidate, chain: tuple[str, ...]) -> None:
        """An installed package that ``cand`` Breaks or Conflicts with is upgraded to its
        candidate when that clears it; otherwise apt would have to remove it."""
        for group in (*cand.breaks, *cand.conflicts):
            for rel in group:
                other = self.current(rel.name)
                if other is None or other.name == cand.name:
                    continue
                if not satisfies(other.version, rel.op, rel.version):
                    continue
                newer = self.u.candidate(rel.name)
                if newer is not None and not satisfies(newer.version, rel.op, rel.version):
                    self.add(newer, (*chain, f"{cand.name} {cand.version} breaks {rel}"))
                    continue
                raise self._fail(
                    f"{cand.name} {cand.version} conflicts with {other.name} {other.version}, "
                    "which apt would remove",
                    chain,
                )

    def keep_installed_working(self) -> None:
        """Upgrade installed packages whose dependencies an upgrade has broken."""
        changed = True
        while changed:
            changed = False
            for name, pkg in sorted(self.u.installed.items()):
                if name in self.plan.install:
                    continue
                for group in (*pkg.pre_depends, *pkg.depends):
                    if any(self.satisfied(rel) for rel in group):
                        continue
                    if not any(r.name in self.plan.upgrades for r in group):
                        continue  # broken before we came: not ours to fix (apt would complain)
                    newer = self.u.candidate(name)
                    upgraded = ", ".join(r.name for r in group if r.name in self.plan.upgrades)
                    if newer is None or newer.version == pkg.version:
                        raise self._fail(
                            f"upgrading {upgraded} breaks the installed {name} {pkg.version} "
                            f"(it depends on {_group_text(group)}) and no newer {name} exists",
                            (),
                        )
                    self.add(newer, (f"keeps {name} working after upgrading {upgraded}",))
                    changed = True
                    break

    def _fail(self, what: str, chain: Sequence[str]) -> Unsatisfiable:
        return Unsatisfiable(
            f"{self.target}: apt cannot install the requested packages: {what}.",
            problems=[Problem(message=step) for step in chain],
            hint='Pin another version ([apt] packages = ["name=version"]), use a base image '
            "of the archive's release, or a snapshot where the dependency exists.",
        )


def solve(universe: Universe, wants: Sequence[Want], *, target: str = "apt") -> AptPlan:
    """The packages ``apt-get install --no-install-recommends`` would install or upgrade."""
    solver = _Solver(universe, target)
    marked: list[Candidate] = []
    for want in wants:
        if want.version is not None:
            cand = universe.version(want.name, want.version)
            if cand is None:
                have = ", ".join(c.version for c in universe.versions.get(want.name, [])[:5])
                raise solver._fail(
                    f'version "{want.version}" of {want.name} is not in the archives'
                    + (f" (they have {have})" if have else ""),
                    (),
                )
        else:
            cand = universe.candidate(want.name)
            if cand is None:
                installed = universe.installed.get(want.name)
                if installed is not None:
                    solver.plan.notes.append(
                        f"{want.name} {installed.version} is already installed (newest)"
                    )
                    continue
                providers = universe.providers(want.name)
                if len(providers) == 1:
                    cand = providers[0]
                elif providers:
                    raise solver._fail(
                        f"{want.name} is a virtual package provided by "
                        f"{', '.join(sorted(p.name for p in providers))}; name one",
                        (),
                    )
                else:
                    raise solver._fail(f"no archive has a package named {want.name}", ())
        installed = universe.installed.get(cand.name)
        if installed is not None and installed.version == cand.version:
            solver.plan.notes.append(f"{cand.name} {cand.version} is already installed")
            continue
        # Like apt-get: every requested package is marked first, then their dependencies
        # are settled in order (so a requested package can satisfy another's dependency).
        if solver.mark(cand, (f"requested: {want}",)):
            marked.append(cand)
    for cand in marked:
        solver.settle(cand, solver.plan.why[cand.name])
    solver.keep_installed_working()
    return solver.plan
