"""Unpack an sdist into a folder: the members `reprolock.resolve.python.sdist.members`
accepts (no links, no paths out of the one top folder, within the limits), nothing else."""

from __future__ import annotations

from pathlib import Path

from reprolock.errors import SourceError
from reprolock.resolve.python.sdist import SdistProblem, members


def unpack(data: bytes, filename: str, into: Path) -> Path:
    """Unpack the sdist ``filename`` (its bytes) into the empty folder ``into``; the
    source tree (``into/<top folder>``)."""
    top_dir: Path | None = None
    try:
        for top, member in members(data, filename):
            top_dir = into / top
            target = top_dir / member.path if member.path else top_dir
            if member.is_dir:
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink() or target.is_dir():
                raise SdistProblem(f"member {member.path[:200]!r} is listed twice")  # noqa: TRY301
            with target.open("wb") as out:
                member.copy_to(out)
            target.chmod(0o755 if member.executable else 0o644)
    except SdistProblem as exc:
        raise SourceError(
            f"{filename} is not a safe, readable source distribution: {exc}.",
            hint="Do not build it: pin a version that has a wheel, or list the package in "
            "[python] no-build.",
        ) from None
    except OSError as exc:
        raise SourceError(
            f"cannot unpack {filename} into {into}: {exc.strerror or exc}.",
            hint="Free space in TMPDIR, or set TMPDIR to a larger folder.",
        ) from None
    if top_dir is None:
        raise SourceError(f"{filename} is empty.", hint="Pin a version that has a wheel.")
    return top_dir
