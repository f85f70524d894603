"""An isolated build environment: a fresh venv holding exactly the locked build wheels.

The venv is made without pip (``python -m venv --without-pip``) and the wheels are
unpacked into it with `installer`, which runs none of their code; nothing is downloaded
here (the caller hands over wheel files it checked against the lock's sha256).
"""

from __future__ import annotations

import subprocess
import sysconfig
from collections.abc import Sequence
from pathlib import Path

from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.exceptions import InstallerError
from installer.sources import WheelFile

from reprolock.errors import SourceError


def make_venv(python: str, folder: Path, wheels: Sequence[Path]) -> Path:
    """A venv in ``folder`` made with the interpreter ``python`` holding ``wheels``; its
    interpreter's path."""
    try:
        done = subprocess.run(
            [python, "-m", "venv", "--without-pip", str(folder)],
            capture_output=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SourceError(
            f"cannot create a build environment in {folder}: {exc}.",
            hint="Check that the Python running reprolock has the venv module.",
        ) from None
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace")[-500:].strip()
        raise SourceError(
            f"cannot create a build environment in {folder}: {tail}.",
            hint="Check that the Python running reprolock has the venv module "
            "(Debian: apt install python3-venv).",
        )
    interpreter = folder / "bin" / "python"
    paths = sysconfig.get_paths(scheme="venv", vars={"base": str(folder), "platbase": str(folder)})
    destination = SchemeDictionaryDestination(
        {
            "purelib": paths["purelib"],
            "platlib": paths["platlib"],
            "headers": str(folder / "include"),
            "scripts": paths["scripts"],
            "data": paths["data"],
        },
        interpreter=str(interpreter),
        script_kind="posix",
        bytecode_optimization_levels=(),
    )
    for wheel in wheels:
        try:
            with WheelFile.open(wheel) as source:
                install(source, destination, {"INSTALLER": b"reprolock\n"})
        except (InstallerError, OSError, ValueError, KeyError) as exc:
            raise SourceError(
                f"cannot install the build requirement {wheel.name} into the build "
                f"environment: {exc}.",
                hint="Relock; if it persists, pin another version of it.",
            ) from None
    return interpreter
