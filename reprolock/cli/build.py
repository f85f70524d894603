"""``reprolock build``: the image of a locked target, without a Docker daemon."""

from __future__ import annotations

import platform
import shutil
import sys
from pathlib import Path
from typing import get_args

import click

from reprolock.api.build import BuildOptions, BuildResult, Bytecode, build
from reprolock.api.build_output import parse_output
from reprolock.build.tar import Compression
from reprolock.cli import output
from reprolock.cli.lock import net_options
from reprolock.cli.options import lock_option, locked_option, spec_option, target_option
from reprolock.cli.output import warnings_shown


def host_python(release: str) -> str | None:
    """A CPython of feature release ``release`` on this machine: the one running
    reprolock, else ``python3.X`` on the PATH."""
    if (
        platform.python_implementation() == "CPython"
        and f"{sys.version_info[0]}.{sys.version_info[1]}" == release
    ):
        return sys.executable
    return shutil.which(f"python{release}")


def _size(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def _json(result: BuildResult) -> dict[str, object]:
    return {
        "target": result.target,
        "platform": result.platform,
        "output": result.output,
        "manifest-digest": result.manifest_digest,
        "config-digest": result.config_digest,
        "size": result.size,
        "epoch": result.epoch,
        "compression": result.compression,
        "bytecode": result.bytecode,
        "layers": [
            {
                "layer": layer.what,
                "digest": layer.digest,
                "diff-id": layer.diff_id,
                "size": layer.size,
                "entries": layer.entries,
                "reused": layer.reused,
            }
            for layer in result.layers
        ],
        "apt": result.apt,
        "python": result.python,
        "notes": result.notes,
        "warnings": result.warnings,
        "record": None if result.record is None else str(result.record),
        "seconds": {k: round(v, 3) for k, v in result.seconds.items()},
    }


@click.command("build")
@spec_option
@lock_option
@target_option
@click.option(
    "-o",
    "--output",
    "output_text",
    metavar="OUTPUT",
    help="oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG] or "
    "registry:REF [default: docker-archive:.reprolock/<target>/image.tar].",
)
@click.option(
    "--compression",
    type=click.Choice(get_args(Compression)),
    default="gzip",
    show_default=True,
    help="How the new layers are stored (gzip level 6, zstd level 3, or none); part of "
    "the manifest digest, not of the config digest.",
)
@click.option(
    "--bytecode",
    type=click.Choice(get_args(Bytecode)),
    default="auto",
    show_default=True,
    help="Byte-compile the venv (unchecked hash-based .pyc) with this machine's CPython of "
    "the target's feature release: auto when there is one, yes (fail without), no.",
)
@click.option(
    "--context",
    type=click.Path(file_okay=False, path_type=Path),
    help="The build context: [image] copy sources and fetched files [default: the lock's folder].",
)
@click.option(
    "--source-date-epoch",
    "epoch",
    type=click.IntRange(min=0),
    help="The time of every file and of the image, instead of the lock's (the base's "
    "creation or the apt snapshot); changes the digests.",
)
@click.option(
    "--no-record",
    is_flag=True,
    help="Do not write the digests to reprolock.build.toml beside the lock.",
)
@locked_option
def build_command(
    spec_path: Path | None,
    lock_path: Path | None,
    target_id: str | None,
    output_text: str | None,
    compression: Compression,
    bytecode: Bytecode,
    context: Path | None,
    epoch: int | None,
    no_record: bool,
    locked: bool,
) -> None:
    """Assemble the image of a locked target from the lock, without a Docker daemon:
    the base's layers by digest, reused byte for byte; a layer of the locked apt packages
    unpacked with dpkg's database; a layer with the venv and its wheels installed by the
    `installer` library for the target interpreter; a layer with [image] copy; the
    config (env, labels, user, workdir, command, ports, healthcheck) as the Dockerfile sets
    it. Every layer is a sorted tar with fixed times and owners: the same lock gives the
    same digests on any machine, for any platform (arm64 on amd64, no emulation).

    Packages whose maintainer scripts an unpacked layer cannot reproduce are refused
    (exit 3): build those with `reprolock dockerfile`. The digests go to
    reprolock.build.toml beside the lock, which `reprolock verify image` compares.
    """
    settings = output.current()
    with warnings_shown(settings) as warnings:
        result = build(
            spec_path,
            lock_path,
            cwd=Path(),
            options=BuildOptions(
                target_id=target_id,
                output=None if output_text is None else parse_output(output_text),
                compression=compression,
                bytecode=bytecode,
                context=context,
                epoch=epoch,
                host_python=host_python,
                record=not no_record,
                locked=locked,
            ),
            net=net_options(settings),
            warnings=warnings,
        )
    if settings.format == "json":
        settings.emit_json(_json(result))
        return
    settings.say(f"built {result.target} ({result.platform}) in {result.seconds['total']:.1f}s")
    for layer in result.layers:
        extra = " (reused)" if layer.reused else f", {layer.entries} paths"
        settings.say(f"  {layer.what:<7} {layer.digest}  {_size(layer.size)}{extra}")
    for line in result.apt:
        settings.say(f"  apt     {line}", level=1)
    for line in result.python:
        settings.say(f"  python  {line}", level=1)
    for line in result.notes:
        settings.say(f"  note: {line}", level=1)
    bytecode_text = result.bytecode or "none"
    settings.say(
        f"  config   {result.config_digest}\n  manifest {result.manifest_digest}\n"
        f"  {_size(result.size)} compressed ({result.compression}), bytecode {bytecode_text}, "
        f"epoch {result.epoch}"
    )
    settings.say(f"wrote {result.output}")
    if result.record is not None:
        settings.say(f"recorded in {result.record}")
