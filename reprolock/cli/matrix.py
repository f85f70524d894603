"""``reprolock matrix``: answer questions from the compatibility tables."""

from __future__ import annotations

import click

from reprolock import api
from reprolock.cli import output


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
