"""``reprolock inspect IMAGE``: read an image from any source and catalog what is in it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reprolock.api.base_layer import registry_client
from reprolock.api.image_kernels import gpu_devices, kernel_runs, kernels_list
from reprolock.api.network import NetOptions
from reprolock.api.progress import Observer, Silent
from reprolock.errors import InputError, SourceError
from reprolock.image.daemon import open_daemon_image, socket_from_host
from reprolock.image.docker_archive import DockerArchive
from reprolock.image.oci_layout import open_oci_archive, open_oci_dir
from reprolock.image.progress import Counted, ReadCounts
from reprolock.image.read import ImageRead, read_image, read_rootfs
from reprolock.image.registry_source import RegistryImage
from reprolock.image.source import Image
from reprolock.inventory import (
    DataFile,
    Inventory,
    build_inventory,
    want_content,
    want_hash,
    want_head,
    want_kernels,
    want_md5,
    want_source,
)
from reprolock.inventory.size import SizeReport, size_report
from reprolock.model import ImageRef, Platform
from reprolock.registry import RegistryOptions
from reprolock.spec.model import GpuDevice
from reprolock.stack.extensions import DeviceRun

TRANSPORTS = ("docker-archive", "oci-archive", "oci", "registry", "docker", "dir")


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageSpecifier:
    transport: str
    target: str  # a path, a reference or a daemon image name
    tag: str | None = None


def parse_image_arg(text: str) -> ImageSpecifier:
    """``docker-archive:PATH[:TAG]``, ``oci:PATH[:TAG]``, ``oci-archive:PATH[:TAG]``,
    ``registry:REF``, ``docker:NAME``, ``dir:PATH``; a bare existing path is read by its
    shape; any other bare name means the daemon, then the registry."""
    if not text.strip():
        raise InputError(
            "No image named: the image argument is empty.",
            hint="Name one, e.g. docker-archive:image.tar, oci:layout, registry:python:3.11-slim "
            "or dir:/ (an empty name is never taken as the current folder).",
        )
    transport, sep, rest = text.partition(":")
    if sep and transport in TRANSPORTS:
        if not rest.strip():
            raise _names_nothing(text, transport)
        archive = transport in ("docker-archive", "oci", "oci-archive")
        if archive and not Path(rest).exists() and ":" in rest:
            location, _, tag = rest.rpartition(":")
            if not location.strip():
                raise _names_nothing(text, transport)
            return ImageSpecifier(transport=transport, target=location, tag=tag or None)
        return ImageSpecifier(transport=transport, target=rest)
    bare = Path(text)
    if bare.is_dir():
        kind = "oci" if (bare / "index.json").is_file() else "dir"
        return ImageSpecifier(transport=kind, target=text)
    if bare.is_file():
        return ImageSpecifier(transport="docker-archive", target=text)
    return ImageSpecifier(transport="auto", target=text)


def _names_nothing(text: str, transport: str) -> InputError:
    return InputError(
        f'"{text}" names no image after "{transport}:".',
        hint=f"Write it like {transport}:{_example(transport)}.",
    )


def _example(transport: str) -> str:
    return {
        "registry": "nvidia/cuda:12.4.1-runtime-ubuntu22.04",
        "docker": "myimage:latest",
        "dir": "/",
    }.get(transport, "PATH")


@dataclass(frozen=True, slots=True, kw_only=True)
class InspectOptions:
    platform: Platform
    check_record: bool = True  # Python files against their RECORD (sha256), pycs' headers
    check_dpkg: bool = True  # Debian packages' files against dpkg's md5sums
    size: bool = False  # where the bytes go (`reprolock.inventory.size`)
    docker_host: str | None = None  # DOCKER_HOST, read by the CLI
    workers: int = 4
    gpus: tuple[str, ...] = ()  # --gpus: how each package's CUDA kernels run these GPUs
    # shared objects scanned for the CUDA kernels they carry (--no-kernel-scan: not)
    scan_kernels: bool = True


@contextlib.contextmanager
def open_image(
    spec: ImageSpecifier,
    options: InspectOptions,
    net: NetOptions,
    registry: RegistryOptions | None = None,
    counts: ReadCounts | None = None,
) -> Iterator[Image]:
    """An `Image` for the specifier; closed (and any spool removed) on exit. ``counts``
    counts what a daemon's image spools."""
    transport = spec.transport
    if transport == "docker-archive":
        archive = DockerArchive.from_path(Path(spec.target), tag=spec.tag)
        try:
            yield archive
        finally:
            archive.close()
    elif transport in ("oci", "oci-archive"):
        opener = open_oci_dir if transport == "oci" else open_oci_archive
        layout = opener(Path(spec.target), tag=spec.tag, platform=options.platform)
        try:
            yield layout
        finally:
            layout.close()
    elif transport == "registry":
        yield _registry_image(spec.target, options, net, registry)
    elif transport == "docker":
        yield from _daemon_image(spec.target, options, counts)
    elif transport == "auto":
        yield from _daemon_then_registry(spec.target, options, net, registry, counts)
    else:  # pragma: no cover - parse_image_arg returns only the transports above
        raise InputError(f"unknown image source {transport}")


def _daemon_image(name: str, options: InspectOptions, counts: ReadCounts | None) -> Iterator[Image]:
    _reference(name, "docker:")
    socket = socket_from_host(options.docker_host)
    if socket is None:
        raise SourceError(
            f"docker:{name}: no docker or podman socket found.",
            hint="Start the daemon, or set DOCKER_HOST=unix:///path/to/socket.",
        )
    daemon = open_daemon_image(name, socket, progress=None if counts is None else counts.spool)
    try:
        yield daemon
    finally:
        daemon.close()


def _daemon_then_registry(
    name: str,
    options: InspectOptions,
    net: NetOptions,
    registry: RegistryOptions | None,
    counts: ReadCounts | None,
) -> Iterator[Image]:
    """A bare name: the daemon's image, else the registry's; when neither has it, both
    failures are said."""
    ref = _reference(name)  # a malformed name is bad input, whoever would have been asked
    socket = socket_from_host(options.docker_host)
    missed = None
    if socket is not None:
        try:
            daemon = open_daemon_image(
                name, socket, progress=None if counts is None else counts.spool
            )
        except SourceError as exc:
            if "no such image" not in exc.message:
                raise
            missed = f"the docker daemon at {socket} has no such image"
        else:
            try:
                yield daemon
            finally:
                daemon.close()
            return
    try:
        image = RegistryImage(
            registry_client(net, registry or RegistryOptions()), ref, options.platform
        )
    except SourceError as exc:
        if missed is None:
            raise
        hint = (
            "Build or pull it first (`docker images` lists the daemon's), or check the "
            f"name; docker:{name} or registry:{name} asks only one of them."
        )
        raise SourceError(
            f"{name}: not found: {missed}, and from its registry: {exc.message}",
            hint=f"{hint} {exc.hint}" if exc.hint else hint,
        ) from None
    yield image


def _reference(text: str, prefix: str = "") -> ImageRef:
    """``text`` as an image reference; `InputError` (exit 2) when it is not one."""
    try:
        return ImageRef.parse(text)
    except ValueError as exc:
        raise InputError(
            f"{prefix}{text}: not an image reference: {exc}.",
            hint='Write it like "python:3.11-slim" or "registry.example.com/team/app:1"; a '
            "file or folder is read when the path exists.",
        ) from None


def _registry_image(
    text: str, options: InspectOptions, net: NetOptions, registry: RegistryOptions | None
) -> RegistryImage:
    ref = _reference(text, "registry:")
    client = registry_client(net, registry or RegistryOptions())
    return RegistryImage(client, ref, options.platform)


@dataclass(frozen=True, slots=True, kw_only=True)
class InspectResult:
    image: ImageRead
    inventory: Inventory
    size: SizeReport | None = None
    gpus: tuple[GpuDevice, ...] = ()  # what --gpus names
    runs: tuple[tuple[DeviceRun, ...], ...] = ()  # per `inventory.kernels` item, per GPU


def inspect(
    text: str,
    options: InspectOptions,
    net: NetOptions,
    registry: RegistryOptions | None = None,
    observer: Observer | None = None,
) -> InspectResult:
    """Read and catalog the image ``text`` names; ``observer`` watches the layers being
    read (`reprolock.image.progress.ReadCounts`)."""
    gpus = gpu_devices(options.gpus)
    if gpus and not options.scan_kernels:
        raise InputError(
            "--gpus says how the image's CUDA kernels run those GPUs: it needs the kernel "
            "scan that --no-kernel-scan skips.",
            hint="Drop one of them.",
        )
    read = _read(parse_image_arg(text), options, net, registry, observer or Silent())
    inventory = build_inventory(
        read,
        check_record=options.check_record,
        check_dpkg=options.check_dpkg,
        scan_kernels=options.scan_kernels,
    )
    size = size_report(read, inventory) if options.size else None
    runs = kernel_runs(inventory.kernels or (), gpus)
    return InspectResult(image=read, inventory=inventory, size=size, gpus=gpus, runs=runs)


def _read(
    spec: ImageSpecifier,
    options: InspectOptions,
    net: NetOptions,
    registry: RegistryOptions | None,
    observer: Observer,
) -> ImageRead:
    """Every layer scanned for what the catalogers and the checks asked for."""
    sha256 = want_hash if options.check_record else _never
    head = want_head if options.check_record else _never
    source = want_source if options.check_record else None
    md5 = want_md5 if options.check_dpkg else _never
    kernels = want_kernels if options.scan_kernels else _never
    if spec.transport == "dir":
        return read_rootfs(
            Path(spec.target),
            want_content=want_content,
            want_hash=sha256,
            want_md5=md5,
            want_head=head,
            want_source=source,
            want_kernels=kernels,
        )
    counts = ReadCounts()
    with observer.watch(counts.stats), open_image(spec, options, net, registry, counts) as image:
        return read_image(
            Counted(image, counts),
            want_content=want_content,
            want_hash=sha256,
            want_md5=md5,
            want_head=head,
            want_source=source,
            want_kernels=kernels,
            workers=options.workers,
        )


def _never(_path: str) -> bool:
    return False


def inventory_dict(result: InspectResult) -> dict[str, Any]:
    """The inventory as stable JSON-able data (keys sorted by the emitter)."""
    inv, image = result.inventory, result.image
    return {
        "image": {
            "source": image.description,
            "manifest-digest": image.manifest_digest,
            "config-digest": image.config_digest,
            "layers": [
                {
                    "index": layer.index,
                    "digest": layer.digest,
                    "diff-id": layer.diff_id,
                    "size": layer.compressed_size,
                    "uncompressed-size": layer.uncompressed_size,
                }
                for layer in image.layers
            ],
            "user": inv.user,
            "entrypoint": list(inv.entrypoint or []) or None,
            "cmd": list(inv.cmd or []) or None,
            "env": dict(inv.env),
            "labels": dict(inv.labels),
            "history": list(inv.history),
        },
        "os": None
        if inv.os is None
        else {
            "id": inv.os.id,
            "version-id": inv.os.version_id,
            "pretty-name": inv.os.pretty_name,
            "codename": inv.os.codename,
            "path": inv.os.path,
            "layer": inv.os.layer,
        },
        "deb-packages": [
            {
                "name": d.name,
                "version": d.version,
                "architecture": d.architecture,
                "source": d.source,
                "path": d.path,
                "layer": d.layer,
            }
            for d in inv.deb_packages
        ],
        "python": [
            {
                "path": e.path,
                "python": e.python,
                "kind": e.kind,
                "venv-version": e.venv_version,
                "venv-home": e.venv_home,
                "packages": [
                    {
                        "name": d.name,
                        "version": d.version,
                        "path": "/" + d.metadata_path,
                        "layer": d.layer,
                        "installer": d.installer,
                        "direct-url": d.direct_url,
                        "wheel-tags": list(d.wheel_tags),
                        "record-files": d.files,
                        "record-checked": d.checked,
                        "bytecode-rewritten": d.bytecode_rewritten,
                        "deb-package": d.deb_package,
                        "record-issues": [
                            {
                                "path": i.path,
                                "problem": i.problem,
                                "expected": i.expected,
                                "actual": i.actual,
                                "layer": i.layer,
                                "listed": i.listed,
                                "used": i.used,
                            }
                            for i in d.record_issues
                        ],
                    }
                    for d in e.dists
                ],
            }
            for e in inv.python_envs
        ],
        "cuda": [
            {
                "name": c.name,
                "version": c.version,
                "source": c.source,
                "path": c.path,
                "layer": c.layer,
            }
            for c in inv.cuda
        ],
        "apt-sources": list(inv.apt_sources),
        "dpkg-integrity": _dpkg_dict(inv),
        "data-files": [_data_file(f) for f in inv.data_files],
        "kernels": None if inv.kernels is None else kernels_list(inv.kernels, result.runs),
        **({} if result.size is None else {"size": size_dict(result.size)}),
    }


def _data_file(file: DataFile) -> dict[str, Any]:
    return {"path": file.path, "size": file.size, "layer": file.layer, "why": file.why}


def size_dict(report: SizeReport) -> dict[str, Any]:
    """The size report as stable JSON-able data (every row; the text shows the largest)."""
    return {
        "total": report.total,
        "stored": report.stored,
        "wasted": report.wasted,
        "unowned": report.unowned,
        "layers": [
            {
                "index": x.index,
                "step": x.step,
                "bytes": x.bytes,
                "files": x.files,
                "wasted": x.wasted,
                "size": x.compressed,
                "uncompressed-size": x.uncompressed,
            }
            for x in report.layers
        ],
        "packages": [
            {
                "kind": p.kind,
                "name": p.name,
                "version": p.version,
                "environment": p.env or None,
                "bytes": p.bytes,
                "files": p.files,
                "layers": list(p.layers),
            }
            for p in report.packages
        ],
        "waste": [
            {"path": w.path, "size": w.size, "layer": w.layer, "by": w.by, "how": w.how}
            for w in report.waste
        ],
        "duplicate-libraries": [
            {
                "name": d.name,
                "wasted": d.wasted,
                "copies": [
                    {"path": c.path, "size": c.size, "layer": c.layer, "owner": c.owner or None}
                    for c in d.copies
                ],
            }
            for d in report.duplicates
        ],
        "caches": [{"name": c.name, "bytes": c.bytes, "files": c.files} for c in report.caches],
        "data-files": [_data_file(f) for f in report.data_files],
    }


def _dpkg_dict(inv: Inventory) -> dict[str, Any] | None:
    found = inv.dpkg_integrity
    if found is None:
        return None
    return {
        "files": found.files,
        "checked": found.checked,
        "diverted": found.diverted,
        "issues": [
            {
                "package": i.package,
                "path": i.path,
                "problem": i.problem,
                "conffile": i.conffile,
                "expected": i.expected,
                "actual": i.actual,
                "layer": i.layer,
            }
            for i in found.issues
        ],
    }
