"""``reprolock diff A B``: what changed between two experiments."""

from __future__ import annotations

import os

import click

from reprolock.api.diff import diff_sides
from reprolock.api.inspect import InspectOptions
from reprolock.cli import output
from reprolock.cli.lock import net_options
from reprolock.cli.options import platform_option, report_option, target_option
from reprolock.cli.report import render_diff
from reprolock.model import Platform
from reprolock.verify.diff import SECTIONS

_ARROW = {
    "upgraded": "↑",
    "downgraded": "↓",
    "rebuilt": "~",
    "changed": "~",
    "added": "+",
    "removed": "-",
}


@click.command("diff")
@click.argument("a")
@click.argument("b")
@target_option
@click.option(
    "--only",
    "only",
    multiple=True,
    type=click.Choice(SECTIONS),
    help="Compare only these sections (repeatable).",
)
@platform_option
@report_option
def diff_command(
    a: str,
    b: str,
    target_id: str | None,
    only: tuple[str, ...],
    platform: Platform,
    fmt: str | None,
) -> None:
    """Show what changed from A to B; each is a lock file or an image (any source
    `inspect` reads). Changes are grouped (base, cuda, apt, python) and classified:
    added, removed, upgraded, downgraded (with major/minor/patch), rebuilt."""
    settings = output.current()
    options = InspectOptions(platform=platform, docker_host=os.environ.get("DOCKER_HOST"))
    result = diff_sides(
        a, b, target_id=target_id, only=frozenset(only), options=options, net=net_options(settings)
    )
    fmt = fmt or settings.format
    if fmt in ("junit", "markdown", "github"):
        click.echo(render_diff(result.a, result.b, result.changes, fmt), nl=False)
        return
    if fmt == "json":
        settings.emit_json(
            {
                "a": result.a,
                "b": result.b,
                "changes": [
                    {
                        "section": c.section,
                        "subject": c.subject,
                        "kind": c.kind,
                        "before": c.before,
                        "after": c.after,
                        "level": c.level,
                        "note": c.note,
                    }
                    for c in result.changes
                ],
            }
        )
        return
    settings.say(f"--- {result.a}\n+++ {result.b}")
    if not result.changes:
        settings.say("no differences")
        return
    for section in SECTIONS:
        changes = [c for c in result.changes if c.section == section]
        if not changes:
            continue
        settings.say(f"{section}: {len(changes)} change{'s' if len(changes) != 1 else ''}")
        width = max(len(c.subject) for c in changes)
        for c in changes:
            move = (
                f"{c.before or ''} → {c.after or ''}".strip(" →")
                if c.before and c.after
                else (c.after or c.before or "")
            )
            extra = f" ({c.level})" if c.level else ""
            note = f"  — {c.note}" if c.note else ""
            colour = {"added": "green", "removed": "red", "downgraded": "yellow"}.get(c.kind)
            click.secho(
                f"  {_ARROW.get(c.kind, '~')} {c.subject:<{width}}  {c.kind} {move}{extra}{note}",
                fg=colour,
            )
