"""Pick the files of each release that install on the target, and say why others don't.

Selection has two parts.  `select_core` decides, for one tag set and interpreter, which
releases are installable and with which wheel: all the resolver needs, and the same for
every target that shares those tags (it is computed once per tag set).  The reasons the
other versions are not installable ("no wheel for the target", "only an sdist") matter
only to explanations, so a `Selection` works them out the first time they are asked for.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, overload

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from reprolock.resolve.python.index import DistFile
from reprolock.resolve.python.target import PythonTarget


@dataclass(frozen=True, slots=True, kw_only=True)
class Release:
    """One version of a project with the target's best wheel (or, for a version without
    one, its sdist when the project may be built: ``wheel`` is then that sdist)."""

    name: NormalizedName
    version: Version
    wheel: DistFile  # the best-ranked compatible wheel, or the sdist to build
    yanked: str | None  # reason when every compatible file is yanked

    @property
    def is_sdist(self) -> bool:
        """Whether this release is installed by building its sdist."""
        return not self.wheel.is_wheel


class Refusal(StrEnum):
    """What kind of rule made a version not installable (beside the reason's text)."""

    NO_WHEEL = "no-wheel"  # files, but no wheel for the target's tags
    SDIST_ONLY = "sdist-only"  # only an sdist, and sdists are not installed
    REQUIRES_PYTHON = "requires-python"  # Requires-Python excludes the target's interpreter
    UNHASHED = "unhashed"  # the index lists no sha256 for the file
    EXCLUDE_NEWER = "exclude-newer"  # uploaded after exclude-newer (or no upload time)

    @property
    def no_usable_file(self) -> bool:
        """The version has no file the target can use (what a silent downgrade hides), as
        opposed to a policy of the spec (exclude-newer) keeping it out."""
        return self is not Refusal.EXCLUDE_NEWER


_SETTLING = threading.Lock()  # explanations are worked out once, whoever asks first


@dataclass(slots=True)
class Selection:
    """The installable releases of a project (newest first) and why the rest are not."""

    releases: list[Release] = field(default_factory=list)
    _rejected: dict[Version, list[str]] = field(default_factory=dict)
    _refusals: dict[Version, list[Refusal]] = field(default_factory=dict)
    # The reasons only explanations need, not worked out yet (see `select_releases`).
    _pending: Callable[[Selection], None] | None = None
    # The newest version any listed file has, worked out without the explanations.
    _newest: Callable[[], Version | None] | None = None

    def newest_listed(self) -> Version | None:
        """The newest version of any file the index lists (installable or not): cheaper
        than `rejected`, for asking whether anything newer than a pin exists at all."""
        if self._newest is not None:
            return self._newest()
        versions = [r.version for r in self.releases] + list(self.rejected)
        return max(versions, default=None)

    @property
    def rejected(self) -> dict[Version, list[str]]:
        """Why each version that is not installable is not, by version."""
        self._settle()
        return self._rejected

    @property
    def refusals(self) -> dict[Version, list[Refusal]]:
        """The kinds of the reasons in `rejected`, in the same order."""
        self._settle()
        return self._refusals

    def reject(self, version: Version, reason: str, kind: Refusal) -> None:
        self._settle()
        self._add(version, reason, kind)

    def _add(self, version: Version, reason: str, kind: Refusal) -> None:
        reasons = self._rejected.setdefault(version, [])
        if reason not in reasons:
            reasons.append(reason)
            self._refusals.setdefault(version, []).append(kind)

    def _settle(self) -> None:
        if self._pending is None:
            return
        with _SETTLING:
            pending, self._pending = self._pending, None
            if pending is not None:
                pending(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class CoreSelection:
    """What one tag set and interpreter can install of a project, from its listed files.

    ``rejected`` holds the reasons found while choosing (exclude-newer, Requires-Python),
    in the order found; ``seen`` the wheel filenames of each version (for explanations),
    ``sdists`` the versions with an sdist among the files, ``versions`` every version text
    parsed so far.
    """

    releases: tuple[Release, ...]
    rejected: tuple[tuple[Version, str, Refusal], ...]
    seen: Mapping[Version, tuple[str, ...]]
    sdists: frozenset[Version]
    versions: Mapping[str, Version | None]


@functools.lru_cache(maxsize=1 << 16)
def version_of(text: str) -> Version | None:
    """``text`` parsed as a version, or None when it is not one.  Remembered: the same
    version texts recur in a project's many files (and `Version` parses by regex)."""
    try:
        return Version(text)
    except InvalidVersion:
        return None


def version_key(version: Version) -> Any:
    """A key that orders versions as they compare: packaging's own comparison key, so a
    sort compares tuples instead of calling `Version.__lt__` (sorting a project's
    thousands of releases that way was a tenth of a cold lock)."""
    try:
        return version._key
    except AttributeError:  # pragma: no cover - a packaging without it: compare them
        return version


@functools.lru_cache(maxsize=1 << 12)
def _canonical(text: str) -> NormalizedName:
    return canonicalize_name(text)


def sdist_version(name: NormalizedName, filename: str) -> Version | None:
    """The version of ``name``'s sdist ``filename`` (PEP 625 ``.tar.gz``, or a legacy
    ``.zip``); None when it is not one of ``name``'s sdists.  The name and version are
    split at the last hyphen, as `packaging.utils.parse_sdist_filename` does."""
    if filename.endswith(".zip"):
        stem = filename[:-4]
    elif filename.endswith(".tar.gz"):
        stem = filename[:-7]
    else:
        return None
    found_name, _, text = stem.rpartition("-")
    if not found_name or _canonical(found_name) != name:
        return None
    return version_of(text)


def without_dominated_sdists(
    name: NormalizedName, files: list[DistFile], everywhere: Callable[[str], bool]
) -> list[DistFile]:
    """``files`` less the sdists that no target would ever choose.

    Selection builds an sdist only for a version without a usable wheel.  An sdist is
    *dominated* when a wheel of the same version fits every target's tags
    (``everywhere(py-abi-platform)``), has a sha256, is not yanked, has the same
    Requires-Python and was uploaded no later than the sdist (so exclude-newer never
    admits the sdist without the wheel): wherever the sdist could be used, that wheel is,
    and where the wheel is refused, the sdist is too, for the same reason (an explanation
    names the wheel's, and no longer repeats it for the sdist).  Projects publish both for
    most releases, so this halves what large pages keep.
    """
    wheels: dict[Version, list[DistFile]] = {}
    for file in files:
        filename = file.filename
        if not filename.endswith(".whl") or not file.sha256 or file.yanked is not None:
            continue
        parts = filename[:-4].split("-")
        if len(parts) not in (5, 6) or _canonical(parts[0]) != name:
            continue
        version = version_of(parts[1])
        if version is not None and everywhere("-".join(parts[-3:])):
            wheels.setdefault(version, []).append(file)
    if not wheels:
        return files
    kept = []
    for file in files:
        if not file.filename.endswith(".whl"):
            version = sdist_version(name, file.filename)
            found = wheels.get(version) if version is not None else None
            if found and any(_dominates(wheel, file) for wheel in found):
                continue
        kept.append(file)
    return kept


def _dominates(wheel: DistFile, sdist: DistFile) -> bool:
    if wheel.requires_python != sdist.requires_python:
        return False
    wheel_time, sdist_time = wheel.upload_time, sdist.upload_time
    return wheel_time is not None and sdist_time is not None and wheel_time <= sdist_time


def _note_sdist(name: NormalizedName, filename: str, sdists: set[Version]) -> None:
    """Add the version of ``name``'s sdist ``filename`` to ``sdists``."""
    version = sdist_version(name, filename)
    if version is not None:
        sdists.add(version)


def select_core(
    name: NormalizedName,
    files: Iterable[DistFile],
    target: PythonTarget,
    *,
    exclude_newer: dt.datetime | None = None,
    build: bool = False,
) -> CoreSelection:
    """Group files by version and keep, per version, the best wheel for ``target``'s tags.

    With ``build``, a version without such a wheel is kept with its sdist (a ``.tar.gz``
    before a ``.zip``), when the index gives its sha256: it will be built.

    Depends on the target only through `PythonTarget.selection_key` (its ranked tags
    and interpreter version), so targets that share it can share the result.
    """
    ranks = target.tag_ranks
    python = Version(target.full_version)
    best: dict[Version, tuple[int, DistFile]] = {}
    yanked_best: dict[Version, tuple[int, DistFile]] = {}
    sdist_best: dict[Version, tuple[int, DistFile]] = {}
    yanked_sdists: dict[Version, tuple[int, DistFile]] = {}
    seen: dict[Version, list[str]] = {}
    sdists: set[Version] = set()
    rejected: list[tuple[Version, str, Refusal]] = []
    versions: dict[str, Version | None] = {}
    names: dict[str, bool] = {}
    python_ok: dict[str, bool] = {}
    tag_rank: dict[tuple[str, str, str], int | None] = {}
    buildable: list[tuple[Version, DistFile]] = []
    unhashed_sdists: list[tuple[Version, DistFile]] = []
    for file in files:
        filename = file.filename
        if not filename.endswith(".whl"):
            found = sdist_version(name, filename)
            if found is not None:
                sdists.add(found)
                if build and file.sha256:
                    buildable.append((found, file))
                elif build:
                    unhashed_sdists.append((found, file))
            continue
        # Wheels are many (torch lists thousands): parse the filename by hand, cache the rest.
        parts = filename[:-4].split("-")
        if len(parts) not in (5, 6):
            continue
        if parts[0] not in names:
            names[parts[0]] = _canonical(parts[0]) == name
        if not names[parts[0]]:
            continue
        if parts[1] not in versions:
            versions[parts[1]] = version_of(parts[1])
        version = versions[parts[1]]
        if version is None:
            continue
        seen.setdefault(version, []).append(filename)
        tags = (parts[-3], parts[-2], parts[-1])  # a project's wheels share few tag sets
        if tags in tag_rank:
            rank = tag_rank[tags]
        else:
            rank = tag_rank[tags] = min(
                (
                    ranks[(py, abi, plat)]
                    for py in parts[-3].split(".")
                    for abi in parts[-2].split(".")
                    for plat in parts[-1].split(".")
                    if (py, abi, plat) in ranks
                ),
                default=None,
            )
        if rank is None:
            continue
        why = _unusable(file, python, python_ok, exclude_newer)
        if why is not None:
            rejected.append((version, *why))
            continue
        _keep_best(yanked_best if file.yanked is not None else best, version, rank, file)
    for version, file in buildable:
        if version in best or version in yanked_best:
            continue  # a wheel always wins over building
        why = _unusable(file, python, python_ok, exclude_newer)
        if why is not None:
            rejected.append((version, *why))
            continue
        rank = 0 if file.filename.endswith(".tar.gz") else 1
        _keep_best(yanked_sdists if file.yanked is not None else sdist_best, version, rank, file)
    for version, file in unhashed_sdists:
        if version not in best and version not in yanked_best and version not in sdist_best:
            rejected.append(
                (
                    version,
                    f"{file.filename} has no sha256 on the index, so it is not built",
                    Refusal.UNHASHED,
                )
            )
    best.update(sdist_best)
    for version, entry in yanked_sdists.items():
        if version not in best:
            yanked_best[version] = entry
    releases = [
        Release(name=name, version=version, wheel=file, yanked=None)
        for version, (_rank, file) in sorted(
            best.items(), key=lambda item: version_key(item[0]), reverse=True
        )
    ]
    releases.extend(
        Release(name=name, version=version, wheel=file, yanked=file.yanked or "")
        for version, (_rank, file) in sorted(
            yanked_best.items(), key=lambda item: version_key(item[0]), reverse=True
        )
        if version not in best
    )
    releases.sort(key=lambda r: version_key(r.version), reverse=True)
    return CoreSelection(
        releases=tuple(releases),
        rejected=tuple(rejected),
        seen={v: tuple(f) for v, f in seen.items()},
        sdists=frozenset(sdists),
        versions=versions,
    )


def _keep_best(
    bucket: dict[Version, tuple[int, DistFile]], version: Version, rank: int, file: DistFile
) -> None:
    """Keep ``file`` as ``version``'s file when it ranks better (lower) than the one kept, or
    as well with a name that sorts first (the same choice on every run)."""
    kept = bucket.get(version)
    if kept is None or rank < kept[0] or (rank == kept[0] and file.filename < kept[1].filename):
        bucket[version] = (rank, file)


def _unusable(
    file: DistFile,
    python: Version,
    python_ok: dict[str, bool],
    exclude_newer: dt.datetime | None,
) -> tuple[str, Refusal] | None:
    """Why ``file`` (a wheel whose tags fit, or an sdist) cannot be used for the target (its
    upload time or its Requires-Python) and what kind of rule that is, or None."""
    if exclude_newer is not None:
        if file.upload_time is None:
            return (
                f"{file.filename} has no upload time, so it cannot be shown to predate "
                "exclude-newer",
                Refusal.EXCLUDE_NEWER,
            )
        if file.upload_time > exclude_newer:
            return (
                f"uploaded {file.upload_time:%Y-%m-%d %H:%M}Z, after "
                f"exclude-newer {exclude_newer:%Y-%m-%d %H:%M}Z",
                Refusal.EXCLUDE_NEWER,
            )
    requires = file.requires_python
    if requires:
        if requires not in python_ok:
            try:
                python_ok[requires] = SpecifierSet(requires).contains(python, prereleases=True)
            except InvalidSpecifier:
                python_ok[requires] = True  # a broken Requires-Python is not ours to enforce
        if not python_ok[requires]:
            return f"requires Python {requires}, the target is {python}", Refusal.REQUIRES_PYTHON
    return None


def selection_for(
    name: NormalizedName,
    core: CoreSelection,
    target: PythonTarget,
    *,
    other_files: Iterable[str] = (),
) -> Selection:
    """``target``'s `Selection` from the core of its tag set.

    ``other_files`` are filenames the index adapter kept by name only (sdists, wheels
    no target can use); they only feed the explanations of rejected versions, which are
    worked out when first asked for.
    """
    selection = Selection(releases=list(core.releases))
    for version, reason, kind in core.rejected:
        selection._add(version, reason, kind)

    def explain(selection: Selection) -> None:
        _explain(name, core, target, other_files, selection)

    def newest() -> Version | None:
        found = [*core.seen, *core.sdists]
        texts = (
            other_files.versions
            if isinstance(other_files, OtherFiles)
            else listed_versions(other_files)
        )
        found.extend(v for t in texts if (v := version_of(t)) is not None)
        return max(found, default=None)

    selection._pending = explain
    selection._newest = newest
    return selection


class OtherFiles(Sequence[str]):
    """The names of a page's files that no target can use (kept for explanations), as one
    newline-separated text (split on first use unless ``names`` are given), with the
    distinct version texts among them (`listed_versions`), which a page summary stores: a
    warm lock asks only whether a version newer than a pin is listed at all, and reading the
    version of every name of every project (136,000 for the kitchen sink) cost it 45 ms."""

    __slots__ = ("_names", "_text", "_versions")

    def __init__(
        self,
        text: str,
        versions: frozenset[str] | None = None,
        names: tuple[str, ...] | None = None,
    ) -> None:
        self._text = text
        self._names = names if names is not None or text else ()
        self._versions = versions

    @classmethod
    def of(cls, names: Iterable[str]) -> OtherFiles:
        """``names`` as `OtherFiles` (given as they are when they already are)."""
        return names if isinstance(names, OtherFiles) else cls("\n".join(names))

    @property
    def text(self) -> str:
        """The names, one per line (no trailing newline)."""
        return self._text

    @property
    def names(self) -> tuple[str, ...]:
        if self._names is None:
            self._names = tuple(self._text.split("\n"))
        return self._names

    @property
    def versions(self) -> frozenset[str]:
        """The distinct version texts of the names (`listed_versions`)."""
        if self._versions is None:
            self._versions = frozenset(listed_versions(self.names))
        return self._versions

    def __len__(self) -> int:
        return len(self.names)

    def __bool__(self) -> bool:
        return bool(self._text)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[str, ...]: ...

    def __getitem__(self, index: int | slice) -> str | tuple[str, ...]:
        return self.names[index]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, OtherFiles):
            return self._text == other._text
        if isinstance(other, list | tuple):
            return list(self.names) == list(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._text)

    def __repr__(self) -> str:
        return f"OtherFiles({list(self.names)!r})"


def listed_versions(filenames: Iterable[str]) -> set[str]:
    """The version texts of these files, each once (a release has a wheel per platform).
    Wheels, nearly all of them, inline: ``name-version-[build-]py-abi-platform.whl``."""
    return {
        t
        for f in filenames
        if (
            t := f.split("-", 2)[1]
            if f.endswith(".whl") and 4 <= f.count("-") <= 5
            else _version_text(f)
        )
        is not None
    }


def _version_text(filename: str) -> str | None:
    """The version part of a wheel or sdist filename, by its shape alone."""
    if filename.endswith(".whl"):
        parts = filename[:-4].split("-")
        return parts[1] if len(parts) in (5, 6) else None
    for suffix in (".tar.gz", ".zip"):
        if filename.endswith(suffix):
            stem = filename[: -len(suffix)]
            return stem.rsplit("-", 1)[1] if "-" in stem else None
    return None


def _explain(
    name: NormalizedName,
    core: CoreSelection,
    target: PythonTarget,
    other_files: Iterable[str],
    selection: Selection,
) -> None:
    """Why the versions that no reason rejects yet are not installable: no wheel for the
    target (naming a few of the files it has), or only an sdist."""
    seen = {v: list(f) for v, f in core.seen.items()}
    sdists = set(core.sdists)
    versions = dict(core.versions)
    for filename in other_files:
        if not filename.endswith(".whl"):
            _note_sdist(name, filename, sdists)
            continue
        parts = filename[:-4].split("-")
        if len(parts) in (5, 6) and parts[1] not in versions:
            versions[parts[1]] = version_of(parts[1])
        other_version = versions.get(parts[1]) if len(parts) in (5, 6) else None
        if other_version is not None:
            seen.setdefault(other_version, []).append(filename)
    installable = {r.version for r in selection.releases}
    for version, filenames in seen.items():
        if version not in installable and version not in selection._rejected:
            sample = ", ".join(sorted(filenames)[:2])
            more = f" and {len(filenames) - 2} more" if len(filenames) > 2 else ""
            selection._add(version, f"no wheel for {target}; has {sample}{more}", Refusal.NO_WHEEL)
    for version in sdists - installable - set(selection._rejected):
        selection._add(
            version,
            "only an sdist is published, and building it is refused "
            "(python.sdists, no-build, only-build)",
            Refusal.SDIST_ONLY,
        )


def select_releases(
    name: NormalizedName,
    files: Iterable[DistFile],
    target: PythonTarget,
    *,
    exclude_newer: dt.datetime | None = None,
    other_files: Iterable[str] = (),
    build: bool = False,
) -> Selection:
    """Group files by version and keep, per version, the best wheel for ``target``.

    ``other_files`` are filenames the index adapter kept by name only (sdists, wheels
    no target can use); they only feed the explanations of rejected versions.
    """
    core = select_core(name, files, target, exclude_newer=exclude_newer, build=build)
    return selection_for(name, core, target, other_files=other_files)
