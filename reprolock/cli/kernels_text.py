"""The kernels section of ``reprolock inspect``'s text: per package the CUDA kernels its
shared objects carry and, with ``--gpus``, how they run each GPU."""

from __future__ import annotations

import posixpath
from collections import Counter

from reprolock.api.image_kernels import describe_run
from reprolock.api.inspect import InspectResult
from reprolock.inventory import PackageKernels
from reprolock.stack.judge import device_name


def render_kernels(result: InspectResult, *, verbose: bool) -> list[str]:
    """``kernels: ...`` and a line per package (``-v``: per library too), each GPU of
    ``--gpus`` below it (``!`` where it has no kernels); a line saying the scan was skipped."""
    packages = result.inventory.kernels
    if packages is None:
        return ["kernels: not scanned (--no-kernel-scan)"]
    if not packages and not result.gpus:
        return []
    files = sum(1 for p in packages if p.kind == "file")
    owned = len(packages) - files
    head = f"kernels: {owned} package{'' if owned == 1 else 's'} with CUDA kernels"
    if files:
        head += f", {files} file{'' if files == 1 else 's'} no package owns"
    lines = [head]
    names = Counter(p.name for p in packages)
    for i, package in enumerate(packages):
        lines.append(f"  {_title(package, names[package.name] > 1)}: {package.kernels.describe()}")
        if verbose and package.kind != "file":
            lines += [f"      {lib.path}: {lib.kernels.describe()}" for lib in package.libraries]
        for run in result.runs[i] if result.runs else ():
            device = run.device
            mark = "!" if run.coverage.how is None else " "
            name = device_name(device.requested, device.capability)
            lines.append(f"   {mark} {name}: {describe_run(run)}")
    return lines


def _title(package: PackageKernels, shared: bool) -> str:
    """``name version``, the environment when another has the same name, and which of
    several libraries the kernels shown are."""
    if package.kind == "file":
        return package.name
    text = f"{package.name} {package.version or '?'}"
    if shared and package.env:
        text += f" in {package.env}"
    count = len(package.libraries)
    if count > 1:
        if package.library is None:
            text += f" ({count} libraries together)"
        else:
            text += f" ({posixpath.basename(package.library)}, of {count} libraries)"
    return text
