"""``reprolock init``: write a commented starter spec."""

from __future__ import annotations

from pathlib import Path

import click

from reprolock import api
from reprolock.cli import output


@click.command("init")
@click.argument("path", type=click.Path(path_type=Path), default=Path(api.SPEC_NAME))
@click.option("--gpu", is_flag=True, help="Start from a GPU (CUDA) example instead of CPU-only.")
@click.option("--force", is_flag=True, help="Overwrite an existing spec.")
def init_command(path: Path, gpu: bool, force: bool) -> None:
    """Write a commented starter reprolock.toml to PATH (default: ./reprolock.toml)."""
    settings = output.current()
    written = api.init(path, gpu=gpu, force=force)
    if settings.format == "json":
        settings.emit_json({"written": str(written), "gpu": gpu})
    else:
        settings.say(f"wrote {written}; edit it, then run `reprolock check`.")
