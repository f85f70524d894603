"""Where an image's bytes go: per layer (with the step that made it), per apt and Python
package, bytes that later layers shadow or delete (still shipped in the layer that wrote
them), shared libraries present in more than one place, package managers' caches, and
data files.  A pure reckoning over an image read and its inventory; sizes are the files'
own (uncompressed) sizes, hard links counted once."""

from __future__ import annotations

import posixpath
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from reprolock.image.read import ImageRead
from reprolock.image.scan import Entry
from reprolock.image.view import Node
from reprolock.inventory.data_files import cache_of
from reprolock.inventory.model import DataFile, Inventory
from reprolock.inventory.owners import Owner, dpkg_owned, owners
from reprolock.inventory.text import printable

WASTE_SHOWN = 20  # the largest shadowed or deleted files listed
DUPLICATE_MIN_BYTES = 64 << 10  # a duplicate costing less is not listed
CELL_SHARE = 0.002  # treemap cells under this share of the image merge into "smaller"
_LIBRARY = re.compile(r"(?P<stem>lib[^/]*?)(?:-[0-9a-f]{8})?\.so(?:\.[0-9][0-9.]*)?")


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerSize:
    index: int
    step: str | None  # the build step that made it (the config's history), when known
    bytes: int  # the files it writes
    files: int
    wasted: int  # of those, bytes a later layer shadows or deletes
    compressed: int  # the stored blob
    uncompressed: int  # its tar


@dataclass(frozen=True, slots=True, kw_only=True)
class PackageSize:
    kind: str  # "apt" or "python"
    name: str
    version: str
    env: str  # a Python package's environment; "" for apt
    bytes: int
    files: int
    layers: tuple[int, ...]  # the layers its files are in


@dataclass(frozen=True, slots=True, kw_only=True)
class Waste:
    path: str
    size: int
    layer: int  # the layer that wrote it
    by: int | None  # the layer that shadowed or deleted it
    how: str  # "shadowed" or "deleted"


@dataclass(frozen=True, slots=True, kw_only=True)
class LibraryCopy:
    path: str
    size: int
    layer: int
    owner: str  # "apt libcudnn9-cuda-12", "python nvidia-cudnn-cu12", or "" (no package)


@dataclass(frozen=True, slots=True, kw_only=True)
class DuplicateLibrary:
    name: str  # the library, as its file names start: "libcudnn_ops"
    copies: tuple[LibraryCopy, ...]  # largest first
    wasted: int  # every copy but the largest


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheSize:
    name: str  # "apt", "pip", "uv", "conda"
    bytes: int
    files: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Cell:
    """A treemap leaf: the bytes one layer holds for one package (or folder)."""

    layer: int
    # "apt libc6", "python torch", "data /models/m.pt", "cache pip", "other /opt",
    # "wasted", "smaller"
    group: str
    bytes: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SizeReport:
    total: int  # bytes the image's filesystem shows
    stored: int  # bytes its layers' files hold (total plus what is wasted)
    layers: tuple[LayerSize, ...]
    packages: tuple[PackageSize, ...]  # largest first
    unowned: int  # bytes of the filesystem no package owns
    wasted: int
    waste: tuple[Waste, ...]  # the largest wasted files
    duplicates: tuple[DuplicateLibrary, ...]
    caches: tuple[CacheSize, ...]
    data_files: tuple[DataFile, ...]
    cells: tuple[Cell, ...]


def size_report(read: ImageRead, inventory: Inventory) -> SizeReport:
    view = read.view
    owned = owners(view, inventory.python_envs, dpkg_owned(view))
    layers, waste = _layers(read)
    files = [n for n in view.walk() if _counted(n.entry)]
    total = sum(n.entry.size for n in files)
    wasted = sum(layer.wasted for layer in layers)
    packages = _packages(files, owned, inventory)
    return SizeReport(
        total=total,
        stored=total + wasted,
        layers=layers,
        packages=packages,
        unowned=total - sum(p.bytes for p in packages),
        wasted=wasted,
        waste=tuple(sorted(waste, key=lambda w: (-w.size, w.path))[:WASTE_SHOWN]),
        duplicates=_duplicates(files, owned),
        caches=_caches(files),
        data_files=inventory.data_files,
        cells=_cells(files, owned, layers, total, {f.path for f in inventory.data_files}),
    )


def _counted(entry: Entry) -> bool:
    """A regular file whose bytes count (a hard link's are its target's)."""
    return entry.kind == "file" and entry.link is None


def _layers(read: ImageRead) -> tuple[tuple[LayerSize, ...], list[Waste]]:
    view, steps = read.view, read.config.layer_steps if read.config else ()
    out, waste = [], []
    for scan, facts in zip(read.scans, read.layers, strict=True):
        written = files = lost = 0
        for entry in scan.entries:
            if not _counted(entry):
                continue
            written, files = written + entry.size, files + 1
            final = view.node(entry.path, follow=False)
            if final is not None and final.entry is entry:
                continue
            lost += entry.size
            if entry.size:
                by = final.layer if final is not None else view.deleted_by(entry.path)
                how = "shadowed" if final is not None else "deleted"
                path = printable("/" + entry.path)
                waste.append(Waste(path=path, size=entry.size, layer=scan.index, by=by, how=how))
        out.append(
            LayerSize(
                index=scan.index,
                step=steps[scan.index] if scan.index < len(steps) else None,
                bytes=written,
                files=files,
                wasted=lost,
                compressed=facts.compressed_size,
                uncompressed=facts.uncompressed_size,
            )
        )
    return tuple(out), waste


def _packages(
    files: Iterable[Node], owned: dict[str, Owner], inventory: Inventory
) -> tuple[PackageSize, ...]:
    sizes: dict[Owner, list[int]] = defaultdict(lambda: [0, 0])
    layers: dict[Owner, set[int]] = defaultdict(set)
    for node in files:
        owner = owned.get(node.entry.path)
        if owner is not None:
            sizes[owner][0] += node.entry.size
            sizes[owner][1] += 1
            layers[owner].add(node.layer)
    versions = {("apt", d.name, ""): d.version for d in inventory.deb_packages}
    versions.update(
        {("python", d.name, e.path): d.version for e in inventory.python_envs for d in e.dists}
    )
    out = [
        PackageSize(
            kind=owner.kind,
            name=owner.name,
            version=versions.get((owner.kind, owner.name, owner.env), ""),
            env=owner.env,
            bytes=size,
            files=count,
            layers=tuple(sorted(layers[owner])),
        )
        for owner, (size, count) in sizes.items()
    ]
    return tuple(sorted(out, key=lambda p: (-p.bytes, p.kind, p.name, p.env)))


def _duplicates(files: Iterable[Node], owned: dict[str, Owner]) -> tuple[DuplicateLibrary, ...]:
    """Libraries whose files (same name up to ``.so``, auditwheel's hash suffix dropped)
    are in more than one folder: e.g. cuDNN from a Debian package and from a wheel."""
    groups: dict[str, list[LibraryCopy]] = defaultdict(list)
    for node in files:
        match = _LIBRARY.fullmatch(posixpath.basename(node.entry.path))
        if match is not None and node.entry.size:
            owner = owned.get(node.entry.path)
            groups[match.group("stem")].append(
                LibraryCopy(
                    path=printable("/" + node.entry.path),
                    size=node.entry.size,
                    layer=node.layer,
                    owner="" if owner is None else owner.label,
                )
            )
    out = []
    for name, copies in groups.items():
        if len({posixpath.dirname(c.path) for c in copies}) < 2:
            continue
        ordered = tuple(sorted(copies, key=lambda c: (-c.size, c.path)))
        wasted = sum(c.size for c in ordered[1:])
        if wasted >= DUPLICATE_MIN_BYTES:
            out.append(DuplicateLibrary(name=printable(name), copies=ordered, wasted=wasted))
    return tuple(sorted(out, key=lambda d: (-d.wasted, d.name)))


def _caches(files: Iterable[Node]) -> tuple[CacheSize, ...]:
    sizes: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for node in files:
        name = cache_of(node.entry.path)
        if name is not None:
            sizes[name][0] += node.entry.size
            sizes[name][1] += 1
    return tuple(
        CacheSize(name=name, bytes=size, files=count)
        for name, (size, count) in sorted(sizes.items(), key=lambda kv: (-kv[1][0], kv[0]))
    )


def _cells(
    files: Iterable[Node],
    owned: dict[str, Owner],
    layers: tuple[LayerSize, ...],
    total: int,
    data: set[str],
) -> tuple[Cell, ...]:
    """The treemap's leaves: each layer's bytes by package (or data file, cache, top
    folder), what later layers waste of it, and the small rest of each layer merged."""
    sizes: dict[tuple[int, str], int] = defaultdict(int)
    for node in files:
        path = node.entry.path
        group = f"data /{path}" if "/" + path in data else _group(path, owned.get(path))
        sizes[node.layer, group] += node.entry.size
    for layer in layers:
        if layer.wasted:
            sizes[layer.index, "wasted"] += layer.wasted
    floor = (total + sum(layer.wasted for layer in layers)) * CELL_SHARE
    out: list[Cell] = []
    small: dict[int, int] = defaultdict(int)
    for (layer_index, group), size in sizes.items():
        if size >= floor or group == "wasted":
            out.append(Cell(layer=layer_index, group=group, bytes=size))
        else:
            small[layer_index] += size
    out += [Cell(layer=i, group="smaller", bytes=size) for i, size in small.items() if size]
    return tuple(sorted(out, key=lambda c: (c.layer, -c.bytes, c.group)))


def _group(path: str, owner: Owner | None) -> str:
    if owner is not None:
        return owner.label
    cache = cache_of(path)
    if cache is not None:
        return f"cache {cache}"
    parts = path.split("/")
    return "other /" + printable("/".join(parts[:2] if len(parts) > 2 else parts[:1]))
