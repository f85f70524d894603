"""``reprolock matrix update`` (maintainers): regenerate matrices/requires.toml from PyPI."""

from __future__ import annotations

from pathlib import Path

import click

from reprolock import api, resources
from reprolock.api.matrix_update import PACKAGES, PYPI, update
from reprolock.cli import output
from reprolock.cli.lock import net_options
from reprolock.errors import CheckFailed
from reprolock.lock.io import read_text, write_atomic


@click.command("update")
@click.option(
    "--index",
    "index_url",
    default=PYPI,
    show_default=True,
    help="The simple index to read the framework packages from.",
)
@click.option(
    "--package",
    "packages",
    multiple=True,
    type=click.Choice([p for p, _ in PACKAGES]),
    help="Read only these packages (repeatable) [default: all].",
)
@click.option(
    "--matrices",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The matrices folder of a checkout [default: the one reprolock runs from].",
)
@click.option("--write", is_flag=True, help="Write the new requires.toml (else only compare).")
def update_command(
    index_url: str, packages: tuple[str, ...], folder: Path | None, write: bool
) -> None:
    """Re-read the framework packages' METADATA on the index: regenerate
    matrices/requires.toml (the NVIDIA wheels each build requires), list the releases the
    tables lack and the rows of pytorch.toml its pins contradict. Without --write, exit 1
    when anything differs."""
    settings = output.current()
    target = (folder or Path(str(resources.data_dir("matrices")))) / "requires.toml"
    current = read_text(target, what="requires table") if target.exists() else ""
    result = update(
        api.shipped_matrices(), current, net_options(settings), index=index_url, packages=packages
    )
    for line in result.missing:
        settings.say(f"missing: {line}")
    for line in result.disagreements:
        settings.say(f"disagrees: {line}")
    for line in result.diff:
        settings.say(line)
    if write:
        if result.text != current:
            write_atomic(target, result.text.encode())
            settings.say(f"wrote {target}")
        else:
            settings.say(f"{target}: unchanged")
        return
    if result.diff or result.disagreements:
        raise CheckFailed(
            f"{target}: differs from what the index says "
            f"({len(result.diff)} diff lines, {len(result.disagreements)} disagreements).",
            hint="Review the differences, then run `reprolock matrix update --write` and fix the "
            "curated rows by hand (with their sources).",
        )
    settings.say(f"{target}: up to date with {index_url}")
