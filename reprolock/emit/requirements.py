"""A hashed requirements.txt for ``pip install --require-hashes --no-deps``."""

from __future__ import annotations

from reprolock.errors import InputError
from reprolock.lock import LockedTarget


def requirements_txt(
    target: LockedTarget, *, urls: bool = False, header: str = "", indexes: bool = True
) -> str:
    """Pins with ``--hash`` lines, sorted; the indexes used come first as pip options
    (unless ``indexes`` is false, for installs from a local wheelhouse).

    With ``urls`` each line names the locked file directly (``name @ url``), so pip
    needs no index at all.
    """
    lines = [header] if header else []
    used = sorted({p.index for p in target.packages}) if indexes else []
    if not urls and used:
        lines.append(f"--index-url {used[0]}")
        lines.extend(f"--extra-index-url {i}" for i in used[1:])
        lines.append("")
    for package in sorted(target.packages, key=lambda p: p.name):
        hashes = sorted({w.sha256 for w in package.wheels if w.sha256})
        if not hashes:
            raise InputError(
                f"{package.name} {package.version} has no sha256 in the lock, so it cannot be "
                "installed with --require-hashes.",
                hint="Remove it from python.allow-unhashed and lock from an index that "
                "publishes hashes.",
            )
        if urls:
            wheel = sorted(package.wheels, key=lambda w: w.filename)[0]
            first = f"{package.name} @ {wheel.url}"
        else:
            first = f"{package.name}=={package.version}"
        lines.append(" \\\n    ".join([first, *(f"--hash=sha256:{h}" for h in hashes)]))
    return "\n".join(lines) + "\n"
