"""Wheels ``reprolock fetch`` builds from locked sdists, and ``built.json`` that lists them.

For each package the lock builds at fetch time (pure Python: ``build.where = "fetch"``),
``fetch`` has put the sdist in ``.reprolock/<target>/sdists/`` and the build
environment's wheels in ``build-wheels/``, each checked against the lock.  The wheel is
built from those alone: the sdist unpacked (`reprolock.pep517.unpack`), a fresh venv of
exactly the locked build wheels (`reprolock.pep517.env`), the backend's ``build_wheel``
in a bounded subprocess without an index or proxy (`reprolock.pep517.hooks`).  The wheel
goes to ``built/`` and ``built.json`` records its filename, sha256 and size with the
sdist's sha256 (written atomically); ``dockerfile`` pins it by that hash.  A wheel
already built from the same sdist and still matching its recorded hash is kept.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from packaging.utils import (
    InvalidWheelFilename,
    canonicalize_name,
    parse_wheel_filename,
)

from reprolock import limits
from reprolock.api.sdist_layer import build_error
from reprolock.atomic import replace_file
from reprolock.emit.requirements import BuiltWheel
from reprolock.errors import InputError, SourceError
from reprolock.lock import BuildWhere, LockedTarget, PythonPackage
from reprolock.model import grammar
from reprolock.pep517.env import make_venv
from reprolock.pep517.hooks import Backend, BuildFailed
from reprolock.pep517.unpack import unpack

BUILT_JSON = "built.json"
_FORMAT = 1


def read_built(folder: Path) -> dict[str, BuiltWheel]:
    """The wheels ``built.json`` in the target's ``folder`` records, by package name
    (empty when there is none); `InputError` for a damaged one."""
    path = folder / BUILT_JSON
    try:
        with path.open("rb") as handle:
            data = handle.read(limits.current().document_bytes + 1)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or exc}.") from None
    try:
        document = json.loads(data)
        entries = document["built"]
        if document.get("format") != _FORMAT or not isinstance(entries, dict):
            raise TypeError("not a built.json of this format")  # noqa: TRY301
        return {
            str(name): BuiltWheel(
                filename=grammar.wheel_filename(str(entry["filename"])),
                sha256=grammar.sha256_hex(str(entry["sha256"])),
                size=int(entry["size"]),
                sdist_sha256=grammar.sha256_hex(str(entry["sdist-sha256"])),
            )
            for name, entry in entries.items()
        }
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(
            f"{path} is damaged ({exc}).",
            hint="Delete it and run `reprolock fetch` again.",
        ) from None


def _write_built(folder: Path, built: Mapping[str, BuiltWheel]) -> None:
    document = {
        "format": _FORMAT,
        "built": {
            name: {
                "filename": b.filename,
                "sha256": b.sha256,
                "size": b.size,
                "sdist-sha256": b.sdist_sha256,
            }
            for name, b in sorted(built.items())
        },
    }
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    try:
        replace_file(folder / BUILT_JSON, text.encode(), durable=True)
    except OSError as exc:
        raise SourceError(
            f"cannot write {folder / BUILT_JSON}: {exc.strerror or exc}.",
            hint="Check that the build context is writable and the disk not full.",
        ) from None


def _sha256(path: Path) -> str | None:
    try:
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError:
        return None


def build_fetched(target: LockedTarget, folder: Path, *, python: str = sys.executable) -> int:
    """Build every wheel of ``target`` that fetch builds, from the files fetched into the
    target's ``folder``; the number built (the others were already there)."""
    packages = [
        p
        for p in target.packages
        if p.sdist is not None and p.build is not None and p.build.where is BuildWhere.FETCH
    ]
    if not packages:
        return 0
    built = read_built(folder)
    count = 0
    for package in sorted(packages, key=lambda p: p.name):
        assert package.sdist is not None
        known = built.get(package.name)
        if (
            known is not None
            and known.sdist_sha256 == package.sdist.sha256
            and _sha256(folder / "built" / known.filename) == known.sha256
        ):
            continue
        built[package.name] = _build_one(package, folder, python)
        _write_built(folder, built)  # after each: a later failure keeps what was built
        count += 1
    stale = {p.name for p in packages}
    if set(built) - stale:
        _write_built(folder, {n: b for n, b in built.items() if n in stale})
    return count


def _build_one(package: PythonPackage, folder: Path, python: str) -> BuiltWheel:
    sdist, build = package.sdist, package.build
    assert sdist is not None and build is not None
    sdist_path = folder / "sdists" / sdist.filename
    data = sdist_path.read_bytes()
    if hashlib.sha256(data).hexdigest() != sdist.sha256:
        raise SourceError(
            f"{sdist_path} does not match the lock's sha256.",
            hint="Run `reprolock fetch` again.",
        )
    out = folder / "built"
    out.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="reprolock-build-") as scratch:
        root = Path(scratch)
        source = unpack(data, sdist.filename, root / "src")
        home = root / "home"
        home.mkdir()
        wheels = [folder / "build-wheels" / w.filename for w in build.wheels]
        venv = make_venv(python, root / "venv", wheels)
        backend = Backend(source, build.backend, build.backend_path, venv, home)
        try:
            made = backend.build_wheel(root / "out")
        except BuildFailed as exc:
            raise build_error(sdist.filename, exc, what="building its wheel") from None
        try:
            name, version, _build, tags = parse_wheel_filename(made.name)
        except InvalidWheelFilename:
            raise SourceError(
                f"building {sdist.filename} gave {made.name[:200]!r}, not a wheel.",
                hint=f'Add "{package.name}" to [python] no-build, or pin a version with a wheel.',
            ) from None
        if name != canonicalize_name(package.name) or str(version) != package.version:
            raise SourceError(
                f"building {sdist.filename} gave {made.name}, a wheel of another "
                "project or version.",
                hint=f'Add "{package.name}" to [python] no-build.',
            )
        if any(t.abi != "none" or t.platform != "any" for t in tags):
            raise SourceError(
                f"building {sdist.filename} gave the platform-specific wheel {made.name}, "
                "but the lock says it is pure Python (built by fetch).",
                hint="Relock with `reprolock lock --refresh` so it is built in the image's "
                "build stage, or pin a version with a wheel.",
            )
        final = out / made.name
        replace_file(final, made.read_bytes(), durable=True)
    digest = _sha256(final)
    assert digest is not None
    return BuiltWheel(
        filename=made.name,
        sha256=digest,
        size=final.stat().st_size,
        sdist_sha256=sdist.sha256,
    )
