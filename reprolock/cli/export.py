"""``reprolock export``: the Python layer of a locked target in other formats."""

from __future__ import annotations

from pathlib import Path

import click

from reprolock.api.export import export
from reprolock.cli import output
from reprolock.cli.options import lock_option, spec_option, target_option

_OUTPUT = click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (atomically) instead of stdout.",
)


@click.group("export")
def export_command() -> None:
    """Export a locked target: requirements.txt or PEP 751 pylock.toml."""


def _run(
    kind: str,
    spec_path: Path | None,
    lock_path: Path | None,
    target_id: str | None,
    out: Path | None,
    urls: bool = False,
) -> None:
    settings = output.current()
    text, warnings = export(
        kind,
        spec_path=spec_path,
        lock_path=lock_path,
        cwd=Path(),
        target_id=target_id,
        output=out,
        urls=urls,
    )
    for warning in warnings:
        settings.warn(warning)
    if out is None:
        click.echo(text, nl=False)
    else:
        settings.say(f"wrote {out}")


@export_command.command("requirements")
@spec_option
@lock_option
@target_option
@_OUTPUT
@click.option("--urls", is_flag=True, help="Name each locked file by URL (no index needed).")
def requirements_command(
    spec_path: Path | None,
    lock_path: Path | None,
    target_id: str | None,
    output: Path | None,
    urls: bool,
) -> None:
    """A hashed requirements.txt for `pip install --no-deps --require-hashes`."""
    _run("requirements", spec_path, lock_path, target_id, output, urls)


@export_command.command("pylock")
@spec_option
@lock_option
@target_option
@_OUTPUT
def pylock_command(
    spec_path: Path | None, lock_path: Path | None, target_id: str | None, output: Path | None
) -> None:
    """A PEP 751 pylock.toml for the target's Python packages."""
    _run("pylock", spec_path, lock_path, target_id, output)
