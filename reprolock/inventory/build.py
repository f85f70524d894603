"""Run every cataloger over an image read; and which files they need kept or hashed."""

from __future__ import annotations

import posixpath

from reprolock.compat.wheel_kernels import is_shared_object
from reprolock.image.read import ImageRead
from reprolock.inventory import dpkg_files, pyc
from reprolock.inventory.cuda import catalog_cuda
from reprolock.inventory.data_files import catalog_data_files
from reprolock.inventory.dpkg import parse_status
from reprolock.inventory.kernels import catalog_kernels, image_cuda
from reprolock.inventory.model import DebPackage, Inventory, OsInfo
from reprolock.inventory.os_release import parse_os_release
from reprolock.inventory.owners import dpkg_owned, owners
from reprolock.inventory.python_dists import PACKAGE_DIRS, catalog_python
from reprolock.inventory.text import decode, printable

_EXACT = frozenset(
    {
        "etc/os-release",
        "usr/lib/os-release",
        "var/lib/dpkg/status",
        "etc/apt/sources.list",
        "etc/passwd",
    }
)
_DIST_FILES = frozenset({"METADATA", "RECORD", "INSTALLER", "direct_url.json", "WHEEL", "PKG-INFO"})
_HEADERS = frozenset({"cudnn_version.h", "nccl.h"})


def want_content(path: str) -> bool:
    """The files catalogers parse (all small): kept in memory while scanning."""
    if path in _EXACT or path.startswith("var/lib/dpkg/status.d/"):
        return True
    if dpkg_files.want_content(path):
        return True
    folder, leaf = posixpath.split(path)
    if folder.startswith("etc/apt/sources.list.d"):
        return True
    if "-packages/" in path:
        if folder.endswith((".dist-info", ".egg-info")) and leaf in _DIST_FILES:
            return True
        if leaf.endswith(".egg-info") and posixpath.basename(folder) in PACKAGE_DIRS:
            return True
    if leaf == "pyvenv.cfg":
        return True
    if leaf in ("version.json", "version.txt") and folder.startswith("usr/local/cuda"):
        return True
    return leaf in _HEADERS or (leaf.startswith("cudnn_version") and leaf.endswith(".h"))


def want_hash(path: str) -> bool:
    """Files whose sha256 RECORD integrity checks need."""
    return "/site-packages/" in path or "/dist-packages/" in path


want_md5 = dpkg_files.want_md5  # files whose md5 dpkg integrity checks need
want_head = pyc.is_pyc  # pycs, whose headers say what source they were compiled from
want_source = pyc.source_keys  # Python sources: their mtime, and hashes for hash-based pycs
want_kernels = is_shared_object  # shared objects: the CUDA kernels they carry


def build_inventory(
    image: ImageRead,
    *,
    check_record: bool = True,
    check_dpkg: bool = True,
    scan_kernels: bool = True,
) -> Inventory:
    """What ``image`` holds.  ``check_record``, ``check_dpkg`` and ``scan_kernels`` must say
    what the read was asked to keep (the ``want_*`` predicates); without the dpkg check or
    the kernel scan those sections are None (not looked at), never empty (none found)."""
    view = image.view
    os_info: OsInfo | None = None
    for path in ("etc/os-release", "usr/lib/os-release"):
        data = view.read(path)
        node = view.node(path)
        if data is not None and node is not None:
            real = view.resolve(path) or path
            os_info = parse_os_release(decode(data), path="/" + printable(real), layer=node.layer)
            if os_info is not None:
                break
    debs: list[DebPackage] = []
    status = view.read("var/lib/dpkg/status")
    node = view.node("var/lib/dpkg/status")
    status_text = None if status is None else decode(status)
    if status_text is not None and node is not None:
        debs.extend(parse_status(status_text, path="/var/lib/dpkg/status", layer=node.layer))
    for name in view.listdir("var/lib/dpkg/status.d"):
        path = f"var/lib/dpkg/status.d/{name}"
        data, entry = view.read(path), view.node(path)
        if data is not None and entry is not None and not name.endswith(".md5sums"):
            debs.extend(
                parse_status(
                    decode(data),
                    path="/" + printable(path),
                    layer=entry.layer,
                    distroless=True,
                )
            )
    packaged = dpkg_owned(view)
    envs = catalog_python(view, check_record=check_record, packaged=packaged)
    config = image.config
    env = dict(config.env) if config else {}
    cuda = catalog_cuda(view, env=env, debs=debs, python_envs=envs)
    owned = owners(view, tuple(envs), packaged)
    apt_sources = tuple(
        sorted(
            "/" + p
            for p in (
                "etc/apt/sources.list",
                *(f"etc/apt/sources.list.d/{n}" for n in view.listdir("etc/apt/sources.list.d")),
            )
            if view.exists(p)
        )
    )
    return Inventory(
        os=os_info,
        deb_packages=tuple(sorted(debs, key=lambda d: (d.name, d.architecture))),
        python_envs=tuple(envs),
        cuda=tuple(cuda),
        env=config.env if config else (),
        labels=config.labels if config else (),
        user=config.user if config else None,
        entrypoint=config.entrypoint if config else None,
        cmd=config.cmd if config else None,
        apt_sources=apt_sources,
        history=config.history if config else (),
        users=_users(view.read("etc/passwd")),
        dpkg_integrity=dpkg_files.check_dpkg(view, status_text) if check_dpkg else None,
        data_files=tuple(catalog_data_files(view, owned)),
        kernels=tuple(catalog_kernels(view, owned, debs=debs, envs=envs, cuda=image_cuda(cuda)))
        if scan_kernels
        else None,
    )


def _users(passwd: bytes | None) -> tuple[tuple[str, str], ...]:
    """(uid, name) of every /etc/passwd entry."""
    out = []
    for line in decode(passwd or b"").splitlines():
        parts = line.split(":")
        if len(parts) >= 3 and parts[2].isascii() and parts[2].isdigit():
            out.append((parts[2], printable(parts[0])))
    return tuple(out)
