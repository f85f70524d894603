"""Merge layer scans into one read-only view of the image's filesystem.

Later layers win; ``.wh.NAME`` deletes NAME (and what is under it) from lower
layers; ``.wh..wh..opq`` hides everything lower in its folder; a non-folder
replaces a folder with its contents.  Symbolic links are resolved inside the
image root only, as a chroot would: ``..`` stops at the root and absolute
targets start there.
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from reprolock import limits
from reprolock.image.scan import Entry, LayerScan


@dataclass(frozen=True, slots=True)
class Node:
    entry: Entry
    layer: int  # index of the layer that wrote it


class FilesystemView:
    def __init__(self) -> None:
        self._nodes: dict[str, Node] = {}
        self._children: dict[str, set[str]] = {"": set()}
        self._removed: dict[str, int] = {}  # path whited out (or folder made opaque) → layer

    @classmethod
    def merge(cls, scans: Iterable[LayerScan]) -> FilesystemView:
        view = cls()
        for scan in sorted(scans, key=lambda s: s.index):
            for folder in scan.opaque:
                view._removed[folder] = scan.index
                for child in list(view._children.get(folder, ())):
                    view._remove(posixpath.join(folder, child) if folder else child)
            for path in scan.whiteouts:
                view._removed[path] = scan.index
                view._remove(path)
            for entry in scan.entries:
                view._add(Node(entry, scan.index))
        return view

    # -- building ---------------------------------------------------------------------------
    def _add(self, node: Node) -> None:
        path = node.entry.path
        old = self._nodes.get(path)
        if old is not None and old.entry.kind == "dir" and node.entry.kind != "dir":
            self._remove(path)
        parent, leaf = posixpath.split(path)
        self._ensure_dir(parent)
        self._children.setdefault(parent, set()).add(leaf)
        self._nodes[path] = node
        if node.entry.kind == "dir":
            self._children.setdefault(path, set())

    def _ensure_dir(self, path: str) -> None:
        """Implicit folders for ``path`` and its missing ancestors (a layer may list a
        file before, or without, its folders)."""
        missing: list[str] = []
        while path and path not in self._nodes:
            missing.append(path)
            path = posixpath.dirname(path)
        for folder in reversed(missing):
            parent, leaf = posixpath.split(folder)
            self._children.setdefault(parent, set()).add(leaf)
            self._nodes[folder] = Node(Entry(path=folder, kind="dir"), -1)
            self._children.setdefault(folder, set())

    def _remove(self, path: str) -> None:
        """``path`` and everything under it."""
        if self._nodes.get(path) is not None:
            parent, leaf = posixpath.split(path)
            self._children.get(parent, set()).discard(leaf)
        stack = [path]
        while stack:
            current = stack.pop()
            for child in self._children.pop(current, ()):
                stack.append(posixpath.join(current, child) if current else child)
            if current:
                self._nodes.pop(current, None)

    # -- reading ------------------------------------------------------------------------------
    def resolve(self, path: str) -> str | None:
        """The real path of ``path`` with every symlink followed inside the root."""
        caps = limits.current()
        hops_left = caps.link_hops
        todo = [p for p in reversed(path.strip("/").split("/")) if p and p != "."]
        if len(todo) > 2 * caps.path_depth:
            return None  # no path in the view is this deep (scans refuse deeper ones)
        done: list[str] = []
        while todo:
            if len(done) > caps.path_depth:
                return None
            part = todo.pop()
            if part == "..":
                if done:
                    done.pop()
                continue
            current = "/".join([*done, part])
            node = self._nodes.get(current)
            if node is not None and node.entry.kind == "symlink" and node.entry.link is not None:
                hops_left -= 1
                if hops_left < 0:
                    return None
                target = node.entry.link
                todo.extend(p for p in reversed(target.split("/")) if p and p != ".")
                if target.startswith("/"):
                    done = []
                continue
            done.append(part)
        return "/".join(done)

    def node(self, path: str, *, follow: bool = True) -> Node | None:
        real = self.resolve(path) if follow else path.strip("/")
        return None if real is None else self._nodes.get(real)

    def lnode(self, path: str) -> Node | None:
        """The node at ``path`` with the links in its folders followed, not a link at its
        end (``lstat``): where a package's own symbolic links are."""
        folder, leaf = posixpath.split(path.strip("/"))
        real = self.resolve(folder) if folder else ""
        if real is None or leaf in ("", ".", ".."):
            return None
        return self._nodes.get(posixpath.join(real, leaf) if real else leaf)

    def deleted_by(self, path: str) -> int | None:
        """The last layer that deleted ``path`` or a folder above it (a whiteout, or an
        opaque folder), if any did; a path never written has none."""
        current, found = path.strip("/"), None
        while True:
            layer = self._removed.get(current)
            if layer is not None and (found is None or layer > found):
                found = layer
            if not current:
                return found
            current = posixpath.dirname(current)

    def read(self, path: str) -> bytes | None:
        """The bytes of a file kept during scanning (catalogers' inputs), else None.

        A file the catalogers wanted but that was over a cap when scanned is an error
        (`SourceError` naming the file and the cap), never silently absent.
        """
        node = self.node(path)
        if node is None:
            return None
        entry = node.entry
        if entry.omitted == "catalog_total_bytes":
            raise limits.exceeded(
                f"/{entry.path}: the files reprolock keeps in memory to catalog this image",
                entry.omitted,
            )
        if entry.omitted is not None:
            raise limits.exceeded(
                f"/{entry.path}, a file reprolock reads to catalog the image,",
                entry.omitted,
                actual=f"{entry.size} bytes",
            )
        return entry.content

    def exists(self, path: str) -> bool:
        return self.node(path) is not None

    def listdir(self, path: str) -> list[str]:
        real = self.resolve(path)
        return sorted(self._children.get(real, ())) if real is not None else []

    def walk(self, prefix: str = "") -> Iterator[Node]:
        """Every node at or under ``prefix`` (no link following), in path order."""
        start = prefix.strip("/")
        stack = [start]
        while stack:
            current = stack.pop()
            node = self._nodes.get(current)
            if node is not None:
                yield node
            for child in sorted(self._children.get(current, ()), reverse=True):
                stack.append(posixpath.join(current, child) if current else child)

    def glob(self, pattern: str) -> list[str]:
        """Paths matching a shell pattern (``*`` does not cross ``/``)."""
        parts = pattern.strip("/").split("/")
        found = [""]
        for part in parts:
            nxt = []
            for base in found:
                real = self.resolve(base) if base else ""
                if real is None:
                    continue
                for child in self._children.get(real, ()):
                    if fnmatch.fnmatchcase(child, part):
                        nxt.append(posixpath.join(base, child) if base else child)
            found = nxt
        return sorted(found)

    def __len__(self) -> int:
        return len(self._nodes)
