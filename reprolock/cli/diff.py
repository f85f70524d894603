"""``reprolock diff A B``: what changed between two experiments."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from reprolock.api.diff import DiffResult, diff_sides
from reprolock.api.inspect import InspectOptions
from reprolock.cli import output
from reprolock.cli.lock import net_options
from reprolock.cli.options import platform_option, report_option, target_option
from reprolock.cli.progress import ProgressLine
from reprolock.cli.report import render_diff
from reprolock.model import Platform
from reprolock.verify.diff import SECTIONS, Change

_ARROW = {
    "upgraded": "↑",
    "downgraded": "↓",
    "rebuilt": "~",
    "changed": "~",
    "added": "+",
    "removed": "-",
    "modified": "!",
    "missing": "-",
    "restored": "+",
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
@click.option(
    "--exit-code",
    is_flag=True,
    help="Exit 1 when there are differences, 0 when there are none (like git diff).",
)
@platform_option
@report_option
def diff_command(
    a: str,
    b: str,
    target_id: str | None,
    only: tuple[str, ...],
    exit_code: bool,
    platform: Platform,
    fmt: str | None,
) -> int:
    """Show what changed from A to B; each is a lock or an image (any source `inspect`
    reads). Changes are grouped (base, cuda, apt, python, files) and classified: added,
    removed, upgraded, downgraded (with major/minor/patch), rebuilt.

    A side is told by what it holds, not by its name: a text file is a lock, an archive
    an image. Also:

    \b
      -              a lock on standard input
      git:REV[:PATH] the lock at a commit (PATH relative to here; default: the lock
                     beside the spec), e.g. git:HEAD~1
      <(command)     a lock from a pipe, e.g. <(git show main:reprolock.lock)

    An image is seen as `verify` sees it: every Python environment (venvs, the system
    site, /usr/local dist-packages, user sites: each change says which), and files that
    differ from their package's record (RECORD, dpkg's md5sums, stale bytecode), with the
    layer that changed them. A lock compared with an image built on its base leaves out
    what comes unchanged from that base, and says so in one line."""
    settings = output.current()
    options = InspectOptions(
        platform=platform,
        docker_host=os.environ.get("DOCKER_HOST"),
        scan_kernels=False,  # no section of a diff compares kernels
    )
    result = diff_sides(
        a,
        b,
        target_id=target_id,
        only=frozenset(only),
        options=options,
        net=net_options(settings),
        cwd=Path(),
        stdin=sys.stdin.buffer,
        observe=lambda side: ProgressLine.for_terminal(f"reading {side}", settings.verbosity < 0),
    )
    fmt = fmt or settings.format
    if fmt in ("junit", "markdown", "github"):
        click.echo(render_diff(result.a, result.b, result.changes, fmt), nl=False)
    elif fmt == "json":
        settings.emit_json(_as_json(result))
    else:
        _print(result)
    return 1 if exit_code and result.changes else 0


def _as_json(result: DiffResult) -> dict[str, object]:
    return {
        "a": result.a,
        "b": result.b,
        "left-out": result.left_out,
        "changes": [
            {
                "section": c.section,
                "subject": c.subject,
                "kind": c.kind,
                "before": c.before,
                "after": c.after,
                "level": c.level,
                "note": c.note,
                "where": c.where,
            }
            for c in result.changes
        ],
    }


def _print(result: DiffResult) -> None:
    settings = output.current()
    settings.say(f"--- {result.a}\n+++ {result.b}")
    if result.left_out:
        settings.say(result.left_out)
    if not result.changes:
        settings.say("no differences")
        return
    for section in SECTIONS:
        changes = [c for c in result.changes if c.section == section]
        groups: dict[str | None, list[Change]] = {}
        for change in changes:
            groups.setdefault(change.where if section in ("python", "files") else None, []).append(
                change
            )
        for where, group in groups.items():
            count = f"{len(group)} change{'s' if len(group) != 1 else ''}"
            settings.say(f"{section} {where}: {count}" if where else f"{section}: {count}")
            width = max(len(c.subject) for c in group)
            for c in group:
                _line(c, width)


def _line(c: Change, width: int) -> None:
    move = (
        f"{c.before or ''} → {c.after or ''}".strip(" →")
        if c.before and c.after
        else (c.after or c.before or "")
    )
    extra = f" ({c.level})" if c.level else ""
    note = f"  — {c.note}" if c.note else ""
    colour = {"added": "green", "removed": "red", "downgraded": "yellow", "modified": "red"}.get(
        c.kind
    )
    click.secho(
        f"  {_ARROW.get(c.kind, '~')} {c.subject:<{width}}  {c.kind} {move}{extra}{note}",
        fg=colour,
    )
