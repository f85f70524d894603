"""Global options and the one place that writes to the terminal."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import click

from reprolock.errors import ReprolockError

Format = Literal["text", "json"]


@dataclass(slots=True)
class Settings:
    """What the global options said."""

    format: Format = "text"
    verbosity: int = 0
    cache_dir: Path | None = None
    offline: bool = False
    debug: bool = False

    def say(self, message: str, *, level: int = 0) -> None:
        """Human text to stdout, shown when verbosity >= level (text format only)."""
        if self.format == "text" and self.verbosity >= level:
            click.echo(message)

    def warn(self, message: str) -> None:
        """A warning to stderr, unless -q."""
        if self.verbosity >= 0:
            click.secho(f"warning: {message}", fg="yellow", err=True)

    def emit_json(self, value: object) -> None:
        click.echo(json.dumps(value, indent=2, sort_keys=True))


_current = Settings()


def current() -> Settings:
    """The settings of the running command (defaults before the group callback ran)."""
    return _current


def install(settings: Settings) -> None:
    global _current  # noqa: PLW0603 - one process, one command line
    _current = settings


def report_error(error: ReprolockError) -> None:
    """Print ``error`` as one paragraph (or a JSON object with --format json)."""
    settings = current()
    if settings.format == "json":
        click.echo(json.dumps({"error": error.to_dict()}, indent=2, sort_keys=True))
        return
    click.secho("error: ", fg="red", bold=True, err=True, nl=False)
    click.echo(error.render(), err=True)


@contextlib.contextmanager
def warnings_shown(settings: Settings) -> Iterator[list[str]]:
    """A list the command's work appends warnings to, shown when the work ends, also when it
    fails (before the error)."""
    warnings: list[str] = []
    try:
        yield warnings
    finally:
        for warning in warnings:
            settings.warn(warning)


def stdout_is_tty() -> bool:
    return sys.stdout.isatty()
