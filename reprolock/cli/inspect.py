"""``reprolock inspect IMAGE``: what an image contains, read without running it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from reprolock.api.inspect import InspectOptions, InspectResult, inspect, inventory_dict
from reprolock.cli.kernels_text import render_kernels
from reprolock.cli.lock import net_options
from reprolock.cli.options import platform_option
from reprolock.cli.output import current as output_settings
from reprolock.cli.progress import ProgressLine
from reprolock.cli.size_html import render_html
from reprolock.cli.size_text import render_size
from reprolock.inventory import Inventory
from reprolock.lock.io import write_atomic
from reprolock.model import Platform


@click.command("inspect")
@click.argument("image")
@platform_option
@click.option(
    "--no-record-check",
    is_flag=True,
    help="Skip hashing installed Python files against their RECORD, and bytecode against "
    "its source (faster).",
)
@click.option(
    "--no-dpkg-check",
    is_flag=True,
    help="Skip hashing Debian packages' files against dpkg's md5sums (faster).",
)
@click.option(
    "--no-kernel-scan",
    is_flag=True,
    help="Skip scanning shared objects for the CUDA kernels they carry (faster; the kernels "
    "section then says it was not scanned; excludes --gpus).",
)
@click.option(
    "--size",
    is_flag=True,
    help="Also report where the bytes go: per layer and package, wasted by later layers, "
    "duplicate libraries, caches, data files (a size section with --format json).",
)
@click.option(
    "--gpus",
    "gpus",
    multiple=True,
    metavar="GPU[,GPU...]",
    help="Say how each package's CUDA kernels run these GPUs (names from `reprolock matrix "
    "gpus`, or compute capabilities): native, PTX JIT, or no kernels.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "cyclonedx"]),
    default=None,
    help="text, json, or a CycloneDX 1.6 JSON SBOM [default: the global --format].",
)
@click.option(
    "--report",
    "report",
    type=click.Choice(["html"]),
    default=None,
    help="html: the size report as one self-contained page with a treemap of the image's "
    "bytes by layer and package (implies --size).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the report to this file instead of standard output.",
)
def inspect_command(
    image: str,
    platform: Platform,
    no_record_check: bool,
    no_dpkg_check: bool,
    no_kernel_scan: bool,
    size: bool,
    gpus: tuple[str, ...],
    fmt: str | None,
    report: str | None,
    output: Path | None,
) -> None:
    """Read IMAGE without running it and list what is inside: OS, dpkg packages (with
    their files checked against dpkg's md5sums), Python distributions (with RECORD
    integrity and bytecode checked against its source), the CUDA stack, the CUDA kernels
    each package's shared objects carry, data files, and the image config. --size adds
    where the bytes go; --gpus how the kernels run those GPUs. --no-record-check,
    --no-dpkg-check and --no-kernel-scan skip those checks and the scan (faster).

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
    settings = output_settings()
    options = InspectOptions(
        platform=platform,
        check_record=not no_record_check,
        check_dpkg=not no_dpkg_check,
        scan_kernels=not no_kernel_scan,
        docker_host=os.environ.get("DOCKER_HOST"),
        size=size or report == "html",
        gpus=gpus,
    )
    result = inspect(
        image,
        options,
        net_options(settings),
        observer=ProgressLine.for_terminal(f"reading {image}", settings.verbosity < 0),
    )
    if report == "html":
        assert result.size is not None
        _write(render_html(result.size, result.image.description), output)
    elif fmt == "cyclonedx":
        from reprolock.inventory.cyclonedx import image_sbom  # noqa: PLC0415

        _write(
            image_sbom(result.inventory, result.image.description, result.image.manifest_digest),
            output,
        )
    elif (fmt or settings.format) == "json":
        _write(json.dumps(inventory_dict(result), indent=2, sort_keys=True) + "\n", output)
    elif settings.verbosity >= 0 or output is not None:  # -q: nothing on the terminal
        _write("".join(line + "\n" for line in _text(result)), output)


def _write(text: str, path: Path | None) -> None:
    if path is None:
        click.echo(text, nl=False)
    else:
        write_atomic(path, text.encode("utf-8"))


def _text(result: InspectResult) -> list[str]:
    settings = output_settings()
    inv, read = result.inventory, result.image
    lines = [read.description]
    if read.manifest_digest:
        lines.append(f"  manifest {read.manifest_digest}")
    if read.config_digest:
        lines.append(f"  config   {read.config_digest}")
    total = sum(layer.uncompressed_size for layer in read.layers)
    lines.append(f"  layers   {len(read.layers)} ({total / 1e6:.1f} MB uncompressed)")
    if inv.os:
        lines.append(f"  os       {inv.os.pretty_name or inv.os.id} ({inv.os.path})")
    lines.append(f"  user     {inv.user or '(root)'}")
    lines.append(f"dpkg: {len(inv.deb_packages)} packages" + _dpkg_summary(inv))
    if settings.verbosity >= 1:
        lines += [f"  {d.name} {d.version} {d.architecture}" for d in inv.deb_packages]
    for changed in inv.dpkg_integrity.issues if inv.dpkg_integrity else ():
        what = "conffile changed" if changed.conffile else changed.problem
        lines.append(f"  ! {changed.package}: {changed.path} {what} (layer {changed.layer})")
    for env in inv.python_envs:
        issues = sum(len(d.record_issues) for d in env.dists)
        lines.append(
            f"python {env.python or '?'} {env.kind} {env.path}: {len(env.dists)} "
            f"packages" + (f", {issues} RECORD problems" if issues else "")
        )
        for dist in env.dists:
            if settings.verbosity >= 1:
                lines.append(f"  {dist.name} {dist.version}")
            for issue in dist.record_issues:
                layer = "" if issue.layer is None else f" (layer {issue.layer})"
                lines.append(f"  ! {dist.name}: {issue.path} {issue.problem}{layer}")
    if inv.cuda:
        lines.append("cuda:")
        lines += [f"  {c.name} {c.version} ({c.source}: {c.path})" for c in inv.cuda]
    lines += render_kernels(result, verbose=settings.verbosity >= 1)
    if result.size is not None:
        lines += render_size(result.size)
    elif inv.data_files:
        lines.append(f"data files: {len(inv.data_files)} (--size lists them)")
    return lines


def _dpkg_summary(inv: Inventory) -> str:
    found = inv.dpkg_integrity
    if found is None or not found.files:
        return ""
    problems = f", {len(found.issues)} problems" if found.issues else ""
    return f", {found.checked} of {found.files} files checked against md5sums{problems}"
