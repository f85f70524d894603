"""``reprolock inspect IMAGE``: what an image contains, read without running it."""

from __future__ import annotations

import os

import click

from reprolock.api.inspect import InspectOptions, inspect, inventory_dict
from reprolock.cli import output
from reprolock.cli.lock import net_options
from reprolock.cli.options import platform_option
from reprolock.model import Platform


@click.command("inspect")
@click.argument("image")
@platform_option
@click.option(
    "--no-record-check",
    is_flag=True,
    help="Skip hashing installed Python files against their RECORD (faster).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "cyclonedx"]),
    default=None,
    help="text, json, or a CycloneDX 1.6 JSON SBOM [default: the global --format].",
)
def inspect_command(image: str, platform: Platform, no_record_check: bool, fmt: str | None) -> None:
    """Read IMAGE without running it and list what is inside: OS, dpkg packages, Python
    distributions (with RECORD integrity), the CUDA stack, and the image config.

    \b
    IMAGE is one of:
      docker-archive:PATH[:TAG]   a `docker save` tarball
      oci:PATH[:TAG]              an OCI image layout folder
      oci-archive:PATH[:TAG]      a tar of an OCI layout
      registry:REF                straight from a registry
      docker:NAME                 from the docker (or podman) daemon's socket
      dir:PATH                    a root filesystem folder (e.g. dir:/ in a container)
    A bare name means the daemon, then the registry.
    """
    settings = output.current()
    options = InspectOptions(
        platform=platform,
        check_record=not no_record_check,
        docker_host=os.environ.get("DOCKER_HOST"),
    )
    result = inspect(image, options, net_options(settings))
    if fmt == "cyclonedx":
        from reprolock.inventory.cyclonedx import image_sbom  # noqa: PLC0415

        click.echo(
            image_sbom(result.inventory, result.image.description, result.image.manifest_digest),
            nl=False,
        )
        return
    if (fmt or settings.format) == "json":
        settings.emit_json(inventory_dict(result))
        return
    inv, read = result.inventory, result.image
    settings.say(read.description)
    if read.manifest_digest:
        settings.say(f"  manifest {read.manifest_digest}")
    if read.config_digest:
        settings.say(f"  config   {read.config_digest}")
    total = sum(layer.uncompressed_size for layer in read.layers)
    settings.say(f"  layers   {len(read.layers)} ({total / 1e6:.1f} MB uncompressed)")
    if inv.os:
        settings.say(f"  os       {inv.os.pretty_name or inv.os.id} ({inv.os.path})")
    settings.say(f"  user     {inv.user or '(root)'}")
    settings.say(f"dpkg: {len(inv.deb_packages)} packages")
    for deb in inv.deb_packages:
        settings.say(f"  {deb.name} {deb.version} {deb.architecture}", level=1)
    for env in inv.python_envs:
        issues = sum(len(d.record_issues) for d in env.dists)
        settings.say(
            f"python {env.python or '?'} {env.kind} {env.path}: {len(env.dists)} "
            f"packages" + (f", {issues} RECORD problems" if issues else "")
        )
        for dist in env.dists:
            settings.say(f"  {dist.name} {dist.version}", level=1)
            for issue in dist.record_issues:
                settings.say(f"  ! {dist.name}: {issue.path} {issue.problem}")
    if inv.cuda:
        settings.say("cuda:")
        for component in inv.cuda:
            settings.say(
                f"  {component.name} {component.version} ({component.source}: {component.path})"
            )
