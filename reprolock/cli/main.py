"""``reprolock``: the command group, global options and error handling."""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from pathlib import Path
from typing import NoReturn

import click

from reprolock import __version__, limits
from reprolock.cli import output
from reprolock.errors import InputError, ReprolockError

# Each command's module is imported only when that command runs: `reprolock check`
# need not load the resolver and its HTTP stack.
COMMANDS = {
    "init": "reprolock.cli.init:init_command",
    "check": "reprolock.cli.check:check_command",
    "lock": "reprolock.cli.lock:lock_command",
    "explain": "reprolock.cli.explain:explain_command",
    "export": "reprolock.cli.export:export_command",
    "fetch": "reprolock.cli.dockerfile:fetch_command",
    "dockerfile": "reprolock.cli.dockerfile:dockerfile_command",
    "inspect": "reprolock.cli.inspect:inspect_command",
    "diff": "reprolock.cli.diff:diff_command",
    "verify": "reprolock.cli.verify:verify_command",
    "matrix": "reprolock.cli.matrix:matrix_command",
    "doctor": "reprolock.cli.doctor:doctor_command",
    "schema": "reprolock.cli.schema:schema_command",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        command = getattr(importlib.import_module(module), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format.",
)
@click.option("-v", "--verbose", count=True, help="Say more (repeatable).")
@click.option("-q", "--quiet", count=True, help="Say less: only errors.")
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="REPROLOCK_CACHE_DIR",
    help="Cache folder [default: ~/.cache/reprolock].",
)
@click.option("--offline", is_flag=True, help="Use only cached data; never touch the network.")
@click.option("--debug", is_flag=True, help="Show a traceback on errors.")
@click.version_option(__version__, "--version", prog_name="reprolock")
def cli(
    fmt: output.Format, verbose: int, quiet: int, cache_dir: Path | None, offline: bool, debug: bool
) -> None:
    """Lock an ML Docker environment (base image, apt, Python wheels, CUDA stack)
    into a fully pinned, checkable artifact.

    \b
    Exit codes: 0 ok, 1 check failed (drift, stale lock), 2 bad input,
    3 unsatisfiable, 4 network/registry/image source trouble.
    """
    output.install(
        output.Settings(
            format=fmt, verbosity=verbose - quiet, cache_dir=cache_dir, offline=offline, debug=debug
        )
    )
    limits.install(limits.from_environment(os.environ))


INTERNAL_ERROR = 70  # EX_SOFTWARE


def main(argv: list[str] | None = None) -> NoReturn:
    """Run the command line and exit with the code the outcome fixes."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        result = cli.main(args=args, prog_name="reprolock", standalone_mode=False)
        sys.exit(result if isinstance(result, int) else 0)
    except ReprolockError as exc:
        if debug:
            traceback.print_exc()
        output.report_error(exc)
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        if output.current().format == "json":
            output.report_error(InputError(exc.format_message()))
        else:
            exc.show()
        sys.exit(InputError.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug: say so briefly; the traceback is one flag away
        if debug:
            traceback.print_exc()
        click.echo(
            f"error: internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug in reprolock; rerun with --debug for the traceback and "
            "report it.",
            err=True,
        )
        sys.exit(INTERNAL_ERROR)
