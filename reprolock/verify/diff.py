"""What changed between two snapshots, classified, with consequences spelled out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from packaging.version import InvalidVersion, Version

from reprolock.verify.snapshot import Snapshot

Section = Literal["base", "python", "apt", "cuda"]
SECTIONS: tuple[Section, ...] = ("base", "cuda", "apt", "python")


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    section: Section
    subject: str
    kind: str  # added, removed, upgraded, downgraded, rebuilt, changed
    before: str | None
    after: str | None
    level: str | None = None  # major, minor, patch (Python version moves)
    note: str | None = None


def _level(a: Version, b: Version) -> str:
    if a.major != b.major:
        return "major"
    if a.minor != b.minor:
        return "minor"
    return "patch"


def _python_change(
    name: str, before: tuple[str, str | None], after: tuple[str, str | None]
) -> Change | None:
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
        for name in sorted(set(a.python) | set(b.python)):
            before, after = a.python.get(name), b.python.get(name)
            if before is None and after is not None:
                changes.append(
                    Change(
                        section="python", subject=name, kind="added", before=None, after=after[0]
                    )
                )
            elif after is None and before is not None:
                changes.append(
                    Change(
                        section="python", subject=name, kind="removed", before=before[0], after=None
                    )
                )
            elif before is not None and after is not None:
                change = _python_change(name, before, after)
                if change is not None:
                    changes.append(change)
    return changes
