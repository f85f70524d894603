"""``reprolock verify image IMAGE``: the check users put in CI after building an image."""

from __future__ import annotations

import os
from pathlib import Path

import click

from reprolock.api.inspect import InspectOptions
from reprolock.api.verify import verify_image
from reprolock.api.verify_digest import DigestCheck, check_digest
from reprolock.cli import output
from reprolock.cli.lock import net_options
from reprolock.cli.options import (
    lock_option,
    locked_option,
    report_option,
    spec_option,
    target_option,
)
from reprolock.cli.output import warnings_shown
from reprolock.cli.progress import ProgressLine
from reprolock.cli.report import render
from reprolock.lock.io import write_atomic
from reprolock.model import Platform


@click.group("verify")
def verify_command() -> None:
    """Check built artifacts against the lock."""


@verify_command.command("image")
@click.argument("image")
@spec_option
@lock_option
@target_option
@click.option("--strict", is_flag=True, help="Unexpected packages fail too (default: warnings).")
@click.option(
    "--ignore",
    "ignore",
    multiple=True,
    metavar="NAME",
    help="Skip this package in every check (repeatable).",
)
@report_option
@click.option(
    "--junit-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the JUnit report to this file (one read of the image for both, e.g. "
    "--report github --junit-file verify.xml in CI).",
)
@locked_option
@click.option(
    "--digest",
    "digest_only",
    is_flag=True,
    help="Only compare the image's digests with those `reprolock build` recorded for this "
    "lock's target (reprolock.build.toml): no layer is read; exit 1 when they differ, 2 when "
    "nothing is recorded.",
)
@click.option(
    "--full",
    is_flag=True,
    help="Check layer by layer even when the image's digest is the one `reprolock build` "
    "recorded (by default such an image passes on its digest).",
)
def image_command(
    image: str,
    spec_path: Path | None,
    lock_path: Path | None,
    target_id: str | None,
    strict: bool,
    ignore: tuple[str, ...],
    fmt: str | None,
    junit_file: Path | None,
    locked: bool,
    digest_only: bool,
    full: bool,
) -> int:
    """Compare IMAGE (any source `inspect` reads) with its locked target: base layers and
    label, apt packages, Python packages in the locked venv (versions, builds, RECORD
    integrity, bytecode that matches no source, shadowing), Debian packages' files against
    dpkg's md5sums (a changed conffile warns), data files the lock does not allow
    ([image] allow-data), the CUDA stack, the user and labels. Only what layers after the
    locked base wrote is checked; each finding names the layer that changed the file.

    A lock that no longer matches its spec (as `reprolock check` sees it) is a warning;
    --locked makes it an error (exit 1) before the image is read.

    An image whose config digest is the one `reprolock build` recorded for this lock's
    target (reprolock.build.toml) is that build, bit for bit: it passes without its layers
    being read (--full reads them anyway; --digest checks nothing else).

    Exit 0 when it matches, 1 on drift, 2 on bad input, 4 when the image cannot be read.
    """
    if digest_only and full:
        raise click.UsageError("--digest and --full exclude each other.")
    settings = output.current()
    options = InspectOptions(
        platform=Platform.parse("linux/amd64"), docker_host=os.environ.get("DOCKER_HOST")
    )
    check: DigestCheck | None = None
    with warnings_shown(settings) as warnings:
        if not full:
            check = check_digest(
                image,
                spec_path=spec_path,
                lock_path=lock_path,
                cwd=Path(),
                target_id=target_id,
                options=options,
                net=net_options(settings),
                required=digest_only,
                locked=locked,
                warnings=warnings,
            )
        if check is not None and (digest_only or check.matches):
            report = check.report()
            if check.matches:
                settings.say(check.note())
        else:
            report = verify_image(
                image,
                spec_path=spec_path,
                lock_path=lock_path,
                cwd=Path(),
                target_id=target_id,
                strict=strict,
                ignore=frozenset(ignore),
                options=options,
                net=net_options(settings),
                observer=ProgressLine.for_terminal(f"reading {image}", settings.verbosity < 0),
                locked=locked,
                warnings=[] if check is not None else warnings,
            )
    if junit_file is not None:
        write_atomic(junit_file, render(report, "junit").encode("utf-8"))
    text = render(report, fmt or settings.format)
    if (fmt or settings.format) == "text":  # colour on a terminal (click strips it elsewhere)
        for line in text.splitlines():
            colour = (
                "red"
                if line.lstrip().startswith("error")
                else ("yellow" if line.lstrip().startswith("warn") else None)
            )
            click.secho(line, fg=colour)
    else:
        click.echo(text, nl=False)
    return 1 if report.failed else 0
