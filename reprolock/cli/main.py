"""``reprolock``: the command group, global options and error handling."""

from __future__ import annotations

import atexit
import contextlib
import importlib
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, cast

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
    "build": "reprolock.cli.build:build_command",
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
        return with_global_options(command)


# -- global options after the command --------------------------------------------------------
# `reprolock lock -v`, `reprolock diff A B --format json`, `reprolock matrix driver X -v`:
# each command (and each subcommand of a group) takes the global options too, and they
# change the settings the group's own options installed. A command's own option of the same
# name (inspect's --format, which also offers cyclonedx) is left as it is.
GLOBAL_EPILOG = (
    "Global options (--format, -v/-q, --cache-dir, --offline, --debug) may also follow the "
    "command; `reprolock --help` lists them."
)


def _set_format(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None and not ctx.resilient_parsing:
        output.current().format = cast(output.Format, value)


def _add_verbosity(sign: int) -> Callable[[click.Context, click.Parameter, int], None]:
    def add(ctx: click.Context, _param: click.Parameter, value: int) -> None:
        if value and not ctx.resilient_parsing:
            output.current().verbosity += sign * value

    return add


def _set_cache_dir(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    if value is not None and not ctx.resilient_parsing:
        output.current().cache_dir = value


def _set_flag(name: str) -> Callable[[click.Context, click.Parameter, bool], None]:
    def set_flag(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        if value and not ctx.resilient_parsing:
            setattr(output.current(), name, True)

    return set_flag


def _global_params() -> list[click.Parameter]:
    common: dict[str, Any] = {"expose_value": False, "is_eager": True, "hidden": True}
    return [
        click.Option(
            ["--format"], type=click.Choice(["text", "json"]), callback=_set_format, **common
        ),
        click.Option(["-v", "--verbose"], count=True, callback=_add_verbosity(1), **common),
        click.Option(["-q", "--quiet"], count=True, callback=_add_verbosity(-1), **common),
        click.Option(
            ["--cache-dir"],
            type=click.Path(file_okay=False, path_type=Path),
            callback=_set_cache_dir,
            **common,
        ),
        click.Option(["--offline"], is_flag=True, callback=_set_flag("offline"), **common),
        click.Option(["--debug"], is_flag=True, callback=_set_flag("debug"), **common),
    ]


def with_global_options(command: click.Command) -> click.Command:
    """``command`` (and, for a group, every subcommand) taking the global options too."""
    if getattr(command, "_reprolock_globals", False):
        return command
    taken = {name for param in command.params for name in param.opts + param.secondary_opts}
    command.params.extend(p for p in _global_params() if not taken & set(p.opts))
    command.epilog = f"{command.epilog}\n\n{GLOBAL_EPILOG}" if command.epilog else GLOBAL_EPILOG
    command._reprolock_globals = True  # type: ignore[attr-defined]
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            with_global_options(sub)
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


def run() -> NoReturn:
    """The program's entry point (``reprolock``, ``python -m reprolock``): `main`, then a
    quick exit.

    After a large lock the interpreter's teardown, which frees every object one at a time
    and collects the heap once more, took 0.15-0.2 s (a tenth of a warm lock); the
    operating system takes the process's memory back at once instead.  Output is flushed
    and the ``atexit`` handlers run first (coverage, logging); every file reprolock writes
    is written atomically and closed before this point.  In-process callers (tests) use
    `main`, which raises `SystemExit` as usual.
    """
    from reprolock.net.startup import (  # noqa: PLC0415
        note_inherited_descriptors,
        without_charset_detection,
    )

    note_inherited_descriptors()
    without_charset_detection()
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # as sys.exit does with a message
        print(code, file=sys.stderr)
        status = 1
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if run_exit_handlers is None:  # pragma: no cover - not CPython: the usual way out
        sys.exit(status)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (| head): no more
            stream.flush()
    run_exit_handlers()
    os._exit(status)
