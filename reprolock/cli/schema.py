"""``reprolock schema``: print a JSON Schema, for editors and other tools."""

from __future__ import annotations

import click

from reprolock import api


@click.command("schema")
@click.argument("which", type=click.Choice(["spec", "lock"]), default="spec")
def schema_command(which: str) -> None:
    """Print the JSON Schema of reprolock.toml (spec) or reprolock.lock (lock).

    Save it beside your spec and add `#:schema ./reprolock.schema.json` as the
    first line of reprolock.toml so editors (Taplo, Even Better TOML) check it.
    """
    click.echo(api.schema_text(which), nl=False)
