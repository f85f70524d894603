"""``reprolock dockerfile`` and ``reprolock fetch``: build an image of a locked target."""

from __future__ import annotations

from pathlib import Path

import click

from reprolock.api.build_context import fetch, write_dockerfiles, written_summary
from reprolock.cli import output
from reprolock.cli.lock import net_options
from reprolock.cli.options import lock_option, locked_option, spec_option, target_option
from reprolock.cli.output import warnings_shown
from reprolock.cli.progress import ProgressLine

_OUTPUT = click.option(
    "-o",
    "--output",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The build context folder to write into [default: the lock's folder].",
)


@click.command("dockerfile")
@spec_option
@lock_option
@target_option
@_OUTPUT
@click.option(
    "--wheelhouse",
    is_flag=True,
    help="Install the wheels `reprolock fetch` downloaded (--no-index), for air-gapped builds; "
    "by default pip downloads each locked file by its URL.",
)
@click.option(
    "--single-stage",
    is_flag=True,
    help="One stage instead of build + runtime (writes Dockerfile.single-stage; to compare).",
)
@locked_option
def dockerfile_command(
    spec_path: Path | None,
    lock_path: Path | None,
    target_id: str | None,
    out_dir: Path | None,
    wheelhouse: bool,
    single_stage: bool,
    locked: bool,
) -> None:
    """Write a deterministic Dockerfile per locked target, from the lock only.

    FROM the base by digest; the locked apt packages from the fetched .deb files (sha256
    checked again in the build); a build stage that fills the venv with
    `pip install --require-hashes --no-deps --only-binary=:all:`; a runtime stage with the
    venv, a non-root user, ENV, OCI labels (base name and digest, the lock's digest, the
    target, the driver floor), the spec's COPY/EXPOSE/HEALTHCHECK/CMD; and a .dockerignore
    that lets only what it uses into the context. Run `reprolock fetch` first when the lock
    has apt packages (or with --wheelhouse). Needs BuildKit; a proxy CA and credentials go
    in as build secrets (--secret id=ca, id=netrc). A lock that no longer matches its spec
    is a warning; --locked makes it an error (exit 1).
    """
    settings = output.current()
    with warnings_shown(settings) as warnings:
        written = write_dockerfiles(
            spec_path,
            lock_path,
            cwd=Path(),
            target_id=target_id,
            output=out_dir,
            wheelhouse=wheelhouse,
            single_stage=single_stage,
            warnings=warnings,
            locked=locked,
        )
    if settings.format == "json":
        settings.emit_json([{"path": str(w.path), "changed": w.changed} for w in written])
        return
    changed, total = written_summary(written)
    for w in written:
        settings.say(
            f"{'wrote' if w.changed else 'unchanged'} {w.path}", level=0 if w.changed else 1
        )
    if not changed:
        settings.say(f"{total} files up to date")


@click.command("fetch")
@spec_option
@lock_option
@target_option
@_OUTPUT
@locked_option
def fetch_command(
    spec_path: Path | None,
    lock_path: Path | None,
    target_id: str | None,
    out_dir: Path | None,
    locked: bool,
) -> None:
    """Download every locked wheel and .deb of the target(s), and a standalone
    interpreter's tarball, into the build context (.reprolock/<target>/wheels, debs and
    python), each checked against the lock's sha256 and size; build the wheels of locked
    sdists with their locked build environments (built/, recorded in built.json);
    files already there and matching are kept. Exit 4 when a file is gone, its hash or size
    differs, or it cannot be written; exit 1 when the lock was edited by hand, or (with
    --locked) no longer matches its spec, which is otherwise a warning."""
    settings = output.current()
    with warnings_shown(settings) as warnings:
        result = fetch(
            spec_path,
            lock_path,
            cwd=Path(),
            target_id=target_id,
            output=out_dir,
            net=net_options(settings),
            observer=ProgressLine.for_terminal("fetching", settings.verbosity < 0),
            locked=locked,
            warnings=warnings,
        )
    if settings.format == "json":
        settings.emit_json(
            {
                "downloaded": result.downloaded,
                "reused": result.reused,
                "bytes": result.bytes,
                "built": result.built,
                "folders": [str(f) for f in result.folders],
            }
        )
        return
    files = "file" if result.downloaded == 1 else "files"
    settings.say(
        f"fetched {result.downloaded} {files} ({result.bytes / 1e6:.1f} MB), "
        f"{result.reused} already there, all sha256-checked: "
        + ", ".join(str(f) for f in result.folders)
    )
    if result.built:
        wheels = "wheel" if result.built == 1 else "wheels"
        settings.say(
            f"built {result.built} {wheels} from locked sdists with their locked build "
            "environments (recorded in built.json)"
        )
