"""Options several commands share, declared once so they read and behave the same."""

from __future__ import annotations

from pathlib import Path

import click

from reprolock.model import Platform

spec_option = click.option(
    "--spec",
    "spec_path",
    type=click.Path(path_type=Path),
    help="The spec: reprolock.toml, a pyproject.toml with [tool.reprolock], or their folder "
    "[default: found in the current folder].",
)
lock_option = click.option(
    "--lock",
    "lock_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The lock [default: reprolock.lock beside the spec].",
)
locked_option = click.option(
    "--locked",
    is_flag=True,
    help="Fail (exit 1) when the lock no longer matches the spec, as `check` sees it, instead "
    "of warning.",
)
target_option = click.option(
    "--target",
    "target_id",
    metavar="ID",
    help="One target of the lock, e.g. py3.11-amd64 (needed when there are several).",
)


def _platform(_ctx: click.Context, _param: click.Parameter, value: str) -> Platform:
    try:
        return Platform.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


platform_option = click.option(
    "--platform",
    default="linux/amd64",
    show_default=True,
    callback=_platform,
    help="Which image of a multi-platform index to read.",
)

# The formats a check's report can take (the global --format covers text and json).
REPORT_FORMATS = ("text", "json", "junit", "markdown", "github")

report_option = click.option(
    "--report",
    "fmt",
    type=click.Choice(REPORT_FORMATS),
    default=None,
    help="Report format: text, json, junit (CI test reporters), markdown (PR comments), github "
    "(workflow annotations) [default: the global --format].",
)
