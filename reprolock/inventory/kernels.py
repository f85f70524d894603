"""The CUDA kernels an image's packages carry: per Python distribution (its RECORD) and per
Debian package (its dpkg file list), the SASS and PTX of each of its shared objects, as the
layer scan found them (`reprolock.image.scan.Wants.kernels`); files no package owns (a
toolkit unpacked from a tarball) each on their own, by path.

A package's summary is the library that runs (`reprolock.stack.extensions.library_for`: the
one built for the image's CUDA among per-CUDA builds such as bitsandbytes', else the one named
after the package with the most fatbins); when that cannot be told (per-CUDA builds and no
CUDA known, or none for it), all its libraries' kernels together.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping

from reprolock.compat.fatbin import Kernels
from reprolock.image.view import FilesystemView
from reprolock.inventory.model import (
    CudaComponent,
    DebPackage,
    LibraryKernels,
    PackageKernels,
    PythonEnv,
)
from reprolock.inventory.owners import Owner
from reprolock.inventory.text import printable
from reprolock.model import CudaVersion
from reprolock.stack.extensions import library_for

_MAJOR_MINOR = re.compile(r"^(\d+)\.(\d+)")


def image_cuda(components: Iterable[CudaComponent]) -> CudaVersion | None:
    """The image's CUDA: its toolkit's, else its CUDA runtime's (a wheel or a deb)."""
    found: dict[str, str] = {}
    for component in components:
        found.setdefault(component.name, component.version)
    for name in ("cuda", "cuda-runtime"):
        match = _MAJOR_MINOR.match(found.get(name, ""))
        if match is not None:
            return CudaVersion.parse(f"{match.group(1)}.{match.group(2)}")
    return None


def summarize(
    name: str, libraries: tuple[LibraryKernels, ...], cuda: CudaVersion | None
) -> tuple[str | None, Kernels]:
    """The library of a package that runs on ``cuda`` and its kernels; else (None, every
    library's kernels together)."""
    chosen = library_for({lib.path: lib.kernels for lib in libraries}, name, cuda)
    if chosen is not None:
        return chosen
    union = Kernels()
    for lib in libraries:
        union = union.merge(lib.kernels)
    return None, union


def catalog_kernels(
    view: FilesystemView,
    owned: Mapping[str, Owner],
    *,
    debs: Iterable[DebPackage],
    envs: Iterable[PythonEnv],
    cuda: CudaVersion | None,
) -> list[PackageKernels]:
    """Every package with a shared object that carries CUDA kernels, then every such file
    no package owns; sorted by kind, name and environment (files by path)."""
    grouped: dict[Owner, list[LibraryKernels]] = defaultdict(list)
    loose: list[LibraryKernels] = []
    for node in view.walk():
        entry = node.entry
        if entry.kind != "file" or entry.kernels is None:
            continue
        library = LibraryKernels(
            path="/" + printable(entry.path), layer=node.layer, kernels=entry.kernels
        )
        owner = owned.get(entry.path)
        if owner is None:
            loose.append(library)
        else:
            grouped[owner].append(library)
    versions: dict[tuple[str, str], str] = {}
    for deb in debs:
        versions.setdefault(("apt", deb.name), deb.version)
    for env in envs:
        for dist in env.dists:
            versions[("python", f"{dist.name}\0{env.path}")] = dist.version
    out = []
    for owner, libraries in grouped.items():
        ordered = tuple(sorted(libraries, key=lambda lib: lib.path))
        key = owner.name if owner.kind == "apt" else f"{owner.name}\0{owner.env}"
        chosen, kernels = summarize(owner.name, ordered, cuda)
        out.append(
            PackageKernels(
                kind=owner.kind,
                name=owner.name,
                version=versions.get((owner.kind, key)),
                env=owner.env or None,
                libraries=ordered,
                library=chosen,
                kernels=kernels,
            )
        )
    out.sort(key=lambda p: (p.kind, p.name, p.env or ""))
    out += [
        PackageKernels(
            kind="file",
            name=lib.path,
            version=None,
            env=None,
            libraries=(lib,),
            library=lib.path,
            kernels=lib.kernels,
        )
        for lib in sorted(loose, key=lambda lib: lib.path)
    ]
    return out
