"""``reprolock matrix``: answer questions from the compatibility tables."""

from __future__ import annotations

import click

from reprolock import api
from reprolock.cli import output
from reprolock.errors import InputError
from reprolock.model import CudaVersion, DriverVersion


@click.group("matrix")
def matrix_command() -> None:
    """Answer questions from reprolock's compatibility tables (matrices/)."""


@matrix_command.command("gpus")
def gpus_command() -> None:
    """List the GPUs reprolock knows, with their compute capability."""
    settings = output.current()
    table = api.shipped_matrices().gpus
    rows = sorted(table.models, key=lambda m: (m.capability, m.name))
    if settings.format == "json":
        settings.emit_json(
            [
                {
                    "name": m.name,
                    "aliases": list(m.aliases),
                    "compute-capability": str(m.capability),
                    "sm": m.capability.sm,
                    "architecture": m.architecture,
                    "sources": list(m.sources),
                }
                for m in rows
            ]
        )
        return
    width = max(len(m.name) for m in rows)
    settings.say(f"{'GPU':<{width}}  CC    arch")
    for m in rows:
        settings.say(
            f"{m.name:<{width}}  {m.capability!s:<5} {m.capability.sm}  ({m.architecture})"
        )


@matrix_command.command("driver")
@click.argument("version")
def driver_command(version: str) -> None:
    """Which CUDA toolkits a Linux driver VERSION (as nvidia-smi prints it) runs: with every
    feature (strict), and under CUDA minor-version compatibility."""
    settings = output.current()
    try:
        driver = DriverVersion.parse(version)
    except ValueError as exc:
        raise InputError(
            f"{exc}.", hint='Give the driver as nvidia-smi prints it, e.g. "535.104.05".'
        ) from None
    table = api.shipped_matrices().cuda
    rows = table.runnable(driver)
    if settings.format == "json":
        settings.emit_json(
            {
                "driver": str(driver),
                "caveats": table.caveats,
                "toolkits": [
                    {
                        "cuda": str(t.version),
                        "label": t.label,
                        "toolkit-driver": str(t.driver),
                        "strict": strict,
                        "minor-compat": minor,
                    }
                    for t, strict, minor in rows
                ],
            }
        )
        return
    strict_ok = [t for t, strict, _ in rows if strict]
    minor_ok = [t for t, strict, minor in rows if minor and not strict]
    newest = strict_ok[-1].version if strict_ok else None
    settings.say(f"driver {driver}:")
    settings.say(
        f"  strict (every feature): up to CUDA {newest}"
        if newest
        else "  strict (every feature): no CUDA release in the table"
    )
    if minor_ok:
        settings.say(
            f"  minor-version compat:   also CUDA {minor_ok[0].version} … {minor_ok[-1].version}"
        )
        settings.say(f"  caveats: {table.caveats}")
    for toolkit, strict, minor in rows:
        mark = "strict" if strict else "minor" if minor else "no"
        settings.say(f"    {toolkit.version!s:<8} needs {toolkit.driver!s:<10} {mark}", level=1)


@matrix_command.command("cuda")
@click.argument("version")
def cuda_command(version: str) -> None:
    """The least Linux driver a CUDA VERSION needs, strict and under minor-version compat."""
    settings = output.current()
    table = api.shipped_matrices().cuda
    try:
        cuda = CudaVersion.parse(version)
        strict, minor = table.need(cuda, "strict"), table.need(cuda, "minor")
    except ValueError as exc:
        raise InputError(f"{exc}.", hint='Write the version like "12.4" or "12.4.1".') from None
    if settings.format == "json":
        settings.emit_json(
            {
                "cuda": str(cuda),
                "strict": str(strict.driver),
                "minor-compat": str(minor.driver),
                "caveats": table.caveats,
            }
        )
        return
    settings.say(f"CUDA {cuda}: driver >= {strict.driver} (strict: {strict.reason})")
    if minor.policy == "minor":
        settings.say(
            f"  or >= {minor.driver} under minor-version compatibility "
            f"({minor.reason}); {table.caveats}"
        )
