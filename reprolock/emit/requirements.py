"""A hashed requirements.txt for ``pip install --require-hashes --no-deps``.

Every name, version, URL and hash is checked against its grammar first: a newline or a
space in one would add a line or an option for pip.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from reprolock.emit.quoting import word
from reprolock.errors import InputError
from reprolock.lock import LockedTarget
from reprolock.model import grammar


@dataclass(frozen=True, slots=True, kw_only=True)
class BuiltWheel:
    """A wheel built from a locked sdist (``reprolock fetch``), as ``built.json`` records it."""

    filename: str
    sha256: str
    size: int
    sdist_sha256: str  # the locked sdist it was built from


def requirements_txt(
    target: LockedTarget,
    *,
    urls: bool = False,
    header: str = "",
    indexes: bool = True,
    built: Mapping[str, BuiltWheel] | None = None,
    built_at: str = "",
) -> str:
    """Pins with ``--hash`` lines, sorted; the indexes used come first as pip options
    (unless ``indexes`` is false, for installs from a local wheelhouse).

    With ``urls`` each line names the locked file directly (``name @ url``), so pip
    needs no index at all.  A package locked as an sdist is pinned by the sdist's hash
    (pip builds it), unless ``built`` has its wheel: then by that wheel's hash, named
    ``name @ file://<built_at>/<wheel>`` with ``urls``.
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
        wheel_of = (built or {}).get(package.name) if package.sdist is not None else None
        if wheel_of is not None:
            hashes = [word(wheel_of.sha256, grammar.sha256_hex, f"{name} built sha256")]
        elif package.sdist is not None and not hashes:
            hashes = [word(package.sdist.sha256, grammar.sha256_hex, f"{name} sdist sha256")]
        if not hashes:
            raise InputError(
                f"{name} {version} has no sha256 in the lock, so it cannot be "
                "installed with --require-hashes.",
                hint="Remove it from python.allow-unhashed and lock from an index that "
                "publishes hashes.",
            )
        if urls and wheel_of is not None:
            filename = word(wheel_of.filename, grammar.wheel_filename, f"{name} built wheel")
            first = f"{name} @ file://{built_at}/{filename}"
        elif urls and not package.wheels and package.sdist is not None:
            first = f"{name} @ {word(package.sdist.url, grammar.http_url, f'{name} sdist url')}"
        elif urls:
            wheel = sorted(package.wheels, key=lambda w: w.filename)[0]
            first = f"{name} @ {word(wheel.url, grammar.http_url, f'{name} url')}"
        else:
            first = f"{name}=={version}"
        lines.append(" \\\n    ".join([first, *(f"--hash=sha256:{h}" for h in hashes)]))
    return "\n".join(lines) + "\n"
