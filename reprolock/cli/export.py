"""``reprolock export``: the Python layer of a locked target in other formats."""

from __future__ import annotations

from pathlib import Path

import click

from reprolock.api.export import DeployOptions, export
from reprolock.cli import output
from reprolock.cli.options import lock_option, spec_option, target_option

_OUTPUT = click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (atomically) instead of stdout.",
)


@click.group("export")
def export_command() -> None:
    """Export a locked target: requirements.txt, PEP 751 pylock.toml, a Compose file, a
    Kubernetes Deployment, or a CycloneDX SBOM."""


def _run(
    kind: str,
    spec_path: Path | None,
    lock_path: Path | None,
    target_id: str | None,
    out: Path | None,
    urls: bool = False,
    deploy: DeployOptions | None = None,
) -> None:
    settings = output.current()
    text, warnings = export(
        kind,
        spec_path=spec_path,
        lock_path=lock_path,
        cwd=Path(),
        target_id=target_id,
        output=out,
        urls=urls,
        deploy=deploy,
    )
    for warning in warnings:
        settings.warn(warning)
    if out is None:
        click.echo(text, nl=False)
    else:
        settings.say(f"wrote {out}")


@export_command.command("requirements")
@spec_option
@lock_option
@target_option
@_OUTPUT
@click.option("--urls", is_flag=True, help="Name each locked file by URL (no index needed).")
def requirements_command(
    spec_path: Path | None,
    lock_path: Path | None,
    target_id: str | None,
    output: Path | None,
    urls: bool,
) -> None:
    """A hashed requirements.txt for `pip install --no-deps --require-hashes`."""
    _run("requirements", spec_path, lock_path, target_id, output, urls)


@export_command.command("pylock")
@spec_option
@lock_option
@target_option
@_OUTPUT
def pylock_command(
    spec_path: Path | None, lock_path: Path | None, target_id: str | None, output: Path | None
) -> None:
    """A PEP 751 pylock.toml for the target's Python packages."""
    _run("pylock", spec_path, lock_path, target_id, output)


def _deploy_options(image: str, name: str | None, gpus: str, replicas: int) -> DeployOptions:
    if gpus != "all" and not (gpus.isdigit() and int(gpus) > 0):
        raise click.BadParameter(f'"{gpus}" is not "all" or a positive count.', param_hint="--gpus")
    default = image.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0]
    return DeployOptions(image=image, name=name or default, gpus=gpus, replicas=replicas)


_IMAGE = click.option(
    "--image",
    required=True,
    help="The built image to run, ideally by digest (registry/app@sha256:…).",
)
_NAME = click.option("--name", help="Service/Deployment name [default: from the image].")
_GPUS = click.option(
    "--gpus", default="all", show_default=True, help='GPUs per container: "all" or a count.'
)


@export_command.command("compose")
@spec_option
@lock_option
@target_option
@_OUTPUT
@_IMAGE
@_NAME
@_GPUS
def compose_command(
    spec_path: Path | None,
    lock_path: Path | None,
    target_id: str | None,
    output: Path | None,
    image: str,
    name: str | None,
    gpus: str,
) -> None:
    """A Compose file: one service running IMAGE as the lock's non-root user, with its
    ports, healthcheck and labels, and an NVIDIA GPU reservation for CUDA targets."""
    _run(
        "compose",
        spec_path,
        lock_path,
        target_id,
        output,
        deploy=_deploy_options(image, name, gpus, 1),
    )


@export_command.command("k8s")
@spec_option
@lock_option
@target_option
@_OUTPUT
@_IMAGE
@_NAME
@_GPUS
@click.option("--replicas", type=click.IntRange(min=0), default=1, show_default=True)
def k8s_command(
    spec_path: Path | None,
    lock_path: Path | None,
    target_id: str | None,
    output: Path | None,
    image: str,
    name: str | None,
    gpus: str,
    replicas: int,
) -> None:
    """A Kubernetes Deployment running IMAGE: nvidia.com/gpu limits, runAsNonRoot, a liveness
    probe from the healthcheck, and node affinity on the GPU Feature Discovery labels
    (driver >= the lock's floor, GPUs whose compute capability the build covers)."""
    _run(
        "k8s",
        spec_path,
        lock_path,
        target_id,
        output,
        deploy=_deploy_options(image, name, gpus, replicas),
    )


@export_command.command("cyclonedx")
@spec_option
@lock_option
@target_option
@_OUTPUT
def cyclonedx_command(
    spec_path: Path | None, lock_path: Path | None, target_id: str | None, output: Path | None
) -> None:
    """A CycloneDX 1.6 JSON SBOM of the locked target: base image (by digest), apt and
    Python packages (versions, sha256, purls) and the CUDA stack."""
    _run("cyclonedx", spec_path, lock_path, target_id, output)
