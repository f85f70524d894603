"""Pick the files of each release that install on the target, and say why others don't."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

from reprolock.resolve.python.index import DistFile
from reprolock.resolve.python.target import PythonTarget


@dataclass(frozen=True, slots=True, kw_only=True)
class Release:
    """One version of a project with the target's best wheel."""

    name: NormalizedName
    version: Version
    wheel: DistFile  # the best-ranked compatible wheel
    yanked: str | None  # reason when every compatible file is yanked


@dataclass(slots=True)
class Selection:
    """The installable releases of a project (newest first) and why the rest are not."""

    releases: list[Release] = field(default_factory=list)
    rejected: dict[Version, list[str]] = field(default_factory=dict)

    def reject(self, version: Version, reason: str) -> None:
        reasons = self.rejected.setdefault(version, [])
        if reason not in reasons:
            reasons.append(reason)


def keep_filename(name: NormalizedName) -> object:
    """A cheap filename pre-filter: wheels and sdists of this project only."""
    prefix = name.replace("-", "_")

    def keep(filename: str) -> bool:
        lowered = filename.lower().replace("-", "_").replace(".", "_")
        return lowered.startswith(prefix + "_") and (
            filename.endswith(".whl") or filename.endswith((".tar.gz", ".zip"))
        )

    return keep


def select_releases(
    name: NormalizedName,
    files: Iterable[DistFile],
    target: PythonTarget,
    *,
    exclude_newer: dt.datetime | None = None,
) -> Selection:
    """Group files by version and keep, per version, the best wheel for ``target``."""
    priority = target.tag_priority
    python = Version(target.full_version)
    best: dict[Version, tuple[int, DistFile]] = {}
    yanked_best: dict[Version, tuple[int, DistFile]] = {}
    seen: dict[Version, list[str]] = {}
    sdists: set[Version] = set()
    selection = Selection()
    for file in files:
        if file.is_wheel:
            try:
                fname, version, _build, tags = parse_wheel_filename(file.filename)
            except InvalidWheelFilename:
                continue
        else:
            try:
                fname, version = parse_sdist_filename(file.filename)
            except InvalidSdistFilename:
                continue
            if fname == name:
                sdists.add(version)
            continue
        if fname != name:
            continue
        seen.setdefault(version, []).append(file.filename)
        if exclude_newer is not None:
            if file.upload_time is None:
                selection.reject(
                    version,
                    f"{file.filename} has no upload time, so it cannot "
                    "be shown to predate exclude-newer",
                )
                continue
            if file.upload_time > exclude_newer:
                selection.reject(
                    version,
                    f"uploaded {file.upload_time:%Y-%m-%d %H:%M}Z, after "
                    f"exclude-newer {exclude_newer:%Y-%m-%d %H:%M}Z",
                )
                continue
        if file.requires_python:
            try:
                ok = SpecifierSet(file.requires_python).contains(python, prereleases=True)
            except InvalidSpecifier:
                ok = True  # a broken Requires-Python on the index is not ours to enforce
            if not ok:
                selection.reject(
                    version, f"requires Python {file.requires_python}, the target is {python}"
                )
                continue
        ranks = [priority[t] for t in tags if t in priority]
        if not ranks:
            continue
        rank = min(ranks)
        bucket = yanked_best if file.yanked is not None else best
        if (
            version not in bucket
            or rank < bucket[version][0]
            or (rank == bucket[version][0] and file.filename < bucket[version][1].filename)
        ):
            bucket[version] = (rank, file)
    for version, (_rank, file) in sorted(best.items(), reverse=True):
        selection.releases.append(Release(name=name, version=version, wheel=file, yanked=None))
    for version, (_rank, file) in sorted(yanked_best.items(), reverse=True):
        if version not in best:
            selection.releases.append(
                Release(name=name, version=version, wheel=file, yanked=file.yanked or "")
            )
    selection.releases.sort(key=lambda r: r.version, reverse=True)
    installable = {r.version for r in selection.releases}
    for version, filenames in seen.items():
        if version not in installable and version not in selection.rejected:
            sample = ", ".join(sorted(filenames)[:2])
            more = f" and {len(filenames) - 2} more" if len(filenames) > 2 else ""
            selection.reject(version, f"no wheel for {target}; has {sample}{more}")
    for version in sdists - installable - set(selection.rejected):
        selection.reject(
            version,
            "only an sdist is published; reprolock installs wheels only "
            "(--only-binary), so it cannot lock a build from source",
        )
    return selection
