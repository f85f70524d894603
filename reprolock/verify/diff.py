"""What changed between two snapshots, classified, with consequences spelled out."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from packaging.version import InvalidVersion, Version

from reprolock.verify.snapshot import FileState, Key, Snapshot

Section = Literal["base", "python", "apt", "cuda", "files"]
SECTIONS: tuple[Section, ...] = ("base", "cuda", "apt", "python", "files")


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    section: Section
    subject: str
    kind: str  # added, removed, upgraded, downgraded, rebuilt, changed
    before: str | None
    after: str | None
    level: str | None = None  # major, minor, patch (Python version moves)
    note: str | None = None
    where: str | None = None  # a Python package's environment; a file's package


def _level(a: Version, b: Version) -> str:
    if a.major != b.major:
        return "major"
    if a.minor != b.minor:
        return "minor"
    return "patch"


def _python_change(
    name: str, before: tuple[str, str | None], after: tuple[str, str | None]
) -> Change | None:
    """How one package moved within one environment (`Change.where` is set by the caller)."""
    (va, ba), (vb, bb) = before, after
    if va == vb:
        if ba and bb and ba != bb:
            return Change(
                section="python",
                subject=name,
                kind="rebuilt",
                before=va,
                after=vb,
                note="same version, different wheel",
            )
        return None
    try:
        a, b = Version(va), Version(vb)
    except InvalidVersion:
        return Change(section="python", subject=name, kind="changed", before=va, after=vb)
    if a.public == b.public:
        return Change(
            section="python",
            subject=name,
            kind="rebuilt",
            before=va,
            after=vb,
            note=f"another build of {a.public} ({a.local or 'no local label'} → "
            f"{b.local or 'no local label'})",
        )
    kind = "upgraded" if b > a else "downgraded"
    return Change(
        section="python", subject=name, kind=kind, before=va, after=vb, level=_level(a, b)
    )


def _plain(section: Section, a: dict[str, str], b: dict[str, str]) -> list[Change]:
    out = []
    for subject in sorted(set(a) | set(b)):
        va, vb = a.get(subject), b.get(subject)
        if va == vb:
            continue
        kind = "added" if va is None else "removed" if vb is None else "changed"
        note = None
        if section == "cuda" and subject == "driver-floor" and va and vb:
            note = f"driver floor moves from {va} to {vb}" + (
                f": hosts older than {vb} can no longer run it" if _newer(vb, va) else ""
            )
        out.append(
            Change(section=section, subject=subject, kind=kind, before=va, after=vb, note=note)
        )
    return out


def _newer(a: str, b: str) -> bool:
    def key(v: str) -> tuple[int, ...]:
        return tuple(int(p) for p in v.split(".") if p.isdigit())

    return key(a) > key(b)


def diff(a: Snapshot, b: Snapshot, *, only: frozenset[str] = frozenset()) -> list[Change]:
    """Every difference from ``a`` to ``b`` in the chosen sections (all when ``only`` is empty)."""
    wanted = [s for s in SECTIONS if not only or s in only]
    changes: list[Change] = []
    if "base" in wanted and a.base_digest and b.base_digest:
        if a.base_digest != b.base_digest:
            changes.append(
                Change(
                    section="base",
                    subject="base",
                    kind="changed",
                    before=a.base_digest,
                    after=b.base_digest,
                    note="built from another base image",
                )
            )
    elif "base" in wanted and a.base is not None and b.base is not None:
        # An image's layers start with its base's: compare the shorter prefix.
        n = min(len(a.base), len(b.base))
        if a.base[:n] != b.base[:n] or n == 0:
            changes.append(
                Change(
                    section="base",
                    subject="layers",
                    kind="changed",
                    before=",".join(a.base),
                    after=",".join(b.base),
                    note="the base image's layers differ",
                )
            )
    if "cuda" in wanted:
        changes.extend(_plain("cuda", a.cuda, b.cuda))
    if "apt" in wanted:
        changes.extend(_plain("apt", a.apt, b.apt))
    if "python" in wanted:
        changes.extend(_python(a.python, b.python))
    if "files" in wanted:
        changes.extend(_files(a.files, b.files))
    return changes


def _python(
    a: dict[Key, tuple[str, str | None]], b: dict[Key, tuple[str, str | None]]
) -> list[Change]:
    """Package moves per environment, environments in name order."""
    out = []
    for key in sorted(set(a) | set(b)):
        (env, name), before, after = key, a.get(key), b.get(key)
        change = None
        if before is None and after is not None:
            change = Change(
                section="python", subject=name, kind="added", before=None, after=after[0]
            )
        elif after is None and before is not None:
            change = Change(
                section="python", subject=name, kind="removed", before=before[0], after=None
            )
        elif before is not None and after is not None:
            change = _python_change(name, before, after)
        if change is not None:
            out.append(dataclasses.replace(change, where=env))
    return out


def _files(a: dict[str, FileState], b: dict[str, FileState]) -> list[Change]:
    """Files that came to differ from their package's record, were restored, or differ
    otherwise (another layer, another problem)."""
    out = []
    for subject in sorted(set(a) | set(b)):
        before, after = a.get(subject), b.get(subject)
        if before == after:
            continue
        if after is None:
            kind, package = "restored", before.package if before else ""
        elif before is None:
            kind, package = ("missing" if after.problem == "missing" else "modified"), after.package
        else:
            kind, package = "changed", after.package
        out.append(
            Change(
                section="files",
                subject=subject.split(":", 1)[1],
                kind=kind,
                before=None if before is None else str(before),
                after=None if after is None else str(after),
                note=_FILE_NOTES.get(after.problem) if after else "as its package installed it",
                where=package,
            )
        )
    return out


_FILE_NOTES = {
    "modified": "changed at the same package version",
    "missing": "deleted, the package still installed",
    "pyc-stale": "bytecode that matches no source",
    "pyc-orphan": "bytecode whose source is gone",
    "conffile": "a configuration file changed",
}
