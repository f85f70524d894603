"""A hashed requirements.txt for ``pip install --require-hashes --no-deps``.

Every name, version, URL and hash is checked against its grammar first: a newline or a
space in one would add a line or an option for pip.
"""

from __future__ import annotations

from reprolock.emit.quoting import word
from reprolock.errors import InputError
from reprolock.lock import LockedTarget
from reprolock.model import grammar


def requirements_txt(
    target: LockedTarget, *, urls: bool = False, header: str = "", indexes: bool = True
) -> str:
    """Pins with ``--hash`` lines, sorted; the indexes used come first as pip options
    (unless ``indexes`` is false, for installs from a local wheelhouse).

    With ``urls`` each line names the locked file directly (``name @ url``), so pip
    needs no index at all.
    """
    lines = [header] if header else []
    used = sorted({word(p.index, grammar.index_url, "index") for p in target.packages})
    used = used if indexes else []
    if not urls and used:
        lines.append(f"--index-url {used[0]}")
        lines.extend(f"--extra-index-url {i}" for i in used[1:])
        lines.append("")
    for package in sorted(target.packages, key=lambda p: p.name):
        name = word(package.name, grammar.project_name, "package name")
        version = word(package.version, grammar.package_version, f"{name} version")
        hashes = sorted(
            {
                word(w.sha256, grammar.sha256_hex, f"{name} sha256")
                for w in package.wheels
                if w.sha256
            }
        )
        if not hashes:
            raise InputError(
                f"{name} {version} has no sha256 in the lock, so it cannot be "
                "installed with --require-hashes.",
                hint="Remove it from python.allow-unhashed and lock from an index that "
                "publishes hashes.",
            )
        if urls:
            wheel = sorted(package.wheels, key=lambda w: w.filename)[0]
            first = f"{name} @ {word(wheel.url, grammar.http_url, f'{name} url')}"
        else:
            first = f"{name}=={version}"
        lines.append(" \\\n    ".join([first, *(f"--hash=sha256:{h}" for h in hashes)]))
    return "\n".join(lines) + "\n"
