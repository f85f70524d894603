"""``reprolock check``: validate the spec and say whether the lock is fresh."""

from __future__ import annotations

from pathlib import Path

import click

from reprolock import api
from reprolock.cli import output
from reprolock.cli.options import lock_option, spec_option
from reprolock.lock import Lockfile
from reprolock.spec import Spec


def describe(spec: Spec) -> str:
    """One line that says what the spec targets."""
    env = spec.environment
    platforms = ", ".join(str(p) for p in env.platforms)
    parts = [f'environment "{env.name}"', f"Python {env.python}", platforms]
    if spec.gpu is None:
        parts.append("CPU only")
    else:
        devices = (
            ", ".join(f"{d.requested} ({d.capability.sm})" for d in spec.gpu.devices)
            or "no GPU listed"
        )
        parts.append(f"GPUs {devices}")
        if spec.gpu.driver is not None:  # the fleet's: the lock's floor is what it needs
            parts.append(
                f"the fleet's oldest driver {spec.gpu.driver} ({spec.gpu.compat.value} compat)"
            )
    return "; ".join(parts)


def driver_floors(lock: Lockfile) -> str | None:
    """``driver floor 550.54.15 strict, 525.60.13 with minor-version compatibility``: what
    the locked targets need of a host's driver (per target when they differ); None without
    a CUDA stack."""
    floors = {
        t.id: f"{t.cuda.driver_min} strict"
        + (
            f", {t.cuda.driver_min_compat} with minor-version compatibility"
            if t.cuda.driver_min_compat and t.cuda.driver_min_compat != t.cuda.driver_min
            else ""
        )
        for t in lock.targets
        if t.cuda is not None
    }
    if not floors:
        return None
    if len(set(floors.values())) == 1:
        return f"driver floor {next(iter(floors.values()))}"
    return "driver floor " + "; ".join(f"{tid} {floor}" for tid, floor in floors.items())


@click.command("check")
@spec_option
@lock_option
@click.option(
    "--locked", is_flag=True, help="Fail (exit 1) when there is no lock, not only when it is stale."
)
def check_command(spec_path: Path | None, lock_path: Path | None, locked: bool) -> None:
    """Validate the spec and check that the lock is up to date with it.

    Exits 0 when the spec is valid and the lock fresh (or absent, without
    --locked), 1 when the lock is stale, was edited by hand (its integrity
    digests name the section) or has no digests to check, 2 when the spec or
    lock is invalid, 3 when the locked base has no usable interpreter under
    [python] interpreter (from the facts the lock recorded).
    """
    settings = output.current()
    result = api.check(spec_path, lock_path, cwd=Path(), locked=locked)
    for warning in result.warnings:
        settings.warn(warning)
    if settings.format == "json":
        settings.emit_json(
            {
                "spec": str(result.spec_path),
                "lock": str(result.lock_path),
                "lock-exists": result.lock is not None,
                "fresh": result.fresh,
                "reasons": list(result.reasons),
            }
        )
        return
    settings.say(f"{result.spec_path}: valid: {describe(result.spec)}.")
    if result.lock is None:
        settings.say(f"{result.lock_path}: no lock yet.")
    else:
        count = len(result.lock.targets)
        settings.say(f"{result.lock_path}: up to date ({count} target{'s' if count != 1 else ''}).")
        floors = driver_floors(result.lock)
        if floors is not None:
            settings.say(f"{result.lock_path}: {floors}.")
