"""``reprolock verify image IMAGE``: does the built image match its locked target?"""

from __future__ import annotations

from pathlib import Path

from reprolock.api.export import locate_lock, pick_target
from reprolock.api.inspect import InspectOptions, inspect
from reprolock.api.network import NetOptions
from reprolock.api.progress import Observer
from reprolock.api.project import lock_digest, shipped_matrices, use_lock
from reprolock.inventory.dpkg import parse_status
from reprolock.inventory.model import DebPackage
from reprolock.verify import kernels
from reprolock.verify.findings import Report, verify


def verify_image(
    image: str,
    *,
    spec_path: Path | None,
    lock_path: Path | None,
    cwd: Path,
    target_id: str | None,
    strict: bool,
    ignore: frozenset[str],
    options: InspectOptions,
    net: NetOptions,
    observer: Observer | None = None,
    locked: bool = False,
    warnings: list[str] | None = None,
) -> Report:
    """Compare the image with its locked target. Warnings about the lock (a stale one:
    `freshness`; with ``locked`` that is an error) are appended to ``warnings``."""
    path = locate_lock(spec_path, lock_path, cwd)
    lock, _ = use_lock(path, spec_path, cwd=cwd, locked=locked, warnings=warnings)
    target = pick_target(lock, path, target_id)
    options = InspectOptions(
        platform=target.platform,
        check_record=options.check_record,
        check_dpkg=options.check_dpkg,
        docker_host=options.docker_host,
        workers=options.workers,
        scan_kernels=kernels.wanted(target),  # read only for the lock's GPUs and extensions
    )
    result = inspect(image, options, net, observer=observer)
    base_debs: list[DebPackage] = []
    if target.base is not None and result.image.scans:
        base_view = result.image.view_of_first(len(target.base.diff_ids))
        status = base_view.read("var/lib/dpkg/status")
        if status is not None:
            base_debs = parse_status(
                status.decode(errors="replace"), path="/var/lib/dpkg/status", layer=0
            )
    return verify(
        target,
        lock.image,
        result.inventory,
        image=result.image.description,
        diff_ids=[layer.diff_id for layer in result.image.layers],
        base_debs=base_debs,
        lock_digest=lock_digest(path),
        strict=strict,
        ignore=ignore,
        matrices=shipped_matrices(),
    )
