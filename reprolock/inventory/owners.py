"""Which package owns each file of an image: dpkg's file lists (``var/lib/dpkg/info/*.list``)
and each Python distribution's RECORD.  Paths are the image's real ones (a package's
``/bin/sh`` is ``usr/bin/sh`` in a merged-/usr image); a file two packages claim goes to
the one listed first (dpkg's, then environments in path order)."""

from __future__ import annotations

import csv
import io
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass

from reprolock.image.view import FilesystemView
from reprolock.inventory.dpkg_files import INFO
from reprolock.inventory.model import PythonEnv
from reprolock.inventory.text import decode


@dataclass(frozen=True, slots=True)
class Owner:
    kind: str  # "apt" or "python"
    name: str  # the package
    env: str = ""  # a Python package's environment (its site-packages folder)

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name}"


def dpkg_owned(view: FilesystemView) -> dict[str, Owner]:
    """Real path → the Debian package that lists it (regular files and links)."""
    out: dict[str, Owner] = {}
    folders: dict[str, str | None] = {}
    for package, paths in _dpkg_lists(view):
        owner = Owner("apt", package)
        for path in paths:
            _claim(view, out, path, owner, folders)
    return out


def owners(
    view: FilesystemView, envs: tuple[PythonEnv, ...], dpkg: dict[str, Owner]
) -> dict[str, Owner]:
    """Real path → its owner, for every regular file and link a package lists: ``dpkg``
    (`dpkg_owned`) and the RECORDs of ``envs``."""
    out = dict(dpkg)
    folders: dict[str, str | None] = {}
    for env in envs:
        folder = env.path.lstrip("/")
        for dist in env.dists:
            owner = Owner("python", dist.name, env.path)
            for path in _record_paths(view, folder, dist.metadata_path):
                _claim(view, out, path, owner, folders)
    return out


def _claim(
    view: FilesystemView,
    out: dict[str, Owner],
    path: str,
    owner: Owner,
    folders: dict[str, str | None],
) -> None:
    """``path`` (its folder's links followed: ``folders`` remembers them) is ``owner``'s,
    unless another claimed it first."""
    folder, leaf = posixpath.split(path)
    if folder not in folders:
        folders[folder] = view.resolve(folder) if folder else ""
    real = folders[folder]
    if real is None or leaf in ("", ".", ".."):
        return
    node = view.node(posixpath.join(real, leaf) if real else leaf, follow=False)
    if node is not None and node.entry.kind != "dir":
        out.setdefault(node.entry.path, owner)


def _dpkg_lists(view: FilesystemView) -> Iterator[tuple[str, list[str]]]:
    for name in view.listdir(INFO):
        if name.endswith(".list"):
            data = view.read(posixpath.join(INFO, name)) or b""
            paths = [line.strip().lstrip("/") for line in decode(data).splitlines()]
            yield name.removesuffix(".list").split(":")[0], [p for p in paths if p]


def _record_paths(view: FilesystemView, env: str, metadata_path: str) -> list[str]:
    """The files a distribution's RECORD lists, inside the image."""
    data = view.read(posixpath.join(metadata_path, "RECORD"))
    if not data:
        return []
    out = []
    try:
        for row in csv.reader(io.StringIO(decode(data))):
            if row and row[0]:
                path = posixpath.normpath(posixpath.join(env, row[0]))
                if not path.startswith(".."):
                    out.append(path)
    except csv.Error:
        pass  # a damaged RECORD is reported by the RECORD check; its rows so far count
    return out
