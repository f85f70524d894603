"""A layer being assembled: paths and their metadata, file contents in a spool.

Every path a layer writes is a *real* path: its folders are resolved through the layers
below (the base image's, then the layers this build wrote before) and through this
layer's own links, the way dpkg writes through a Debian's ``/lib`` → ``usr/lib`` link and
BuildKit copies through links in a destination.  Links are followed inside the image root
only (``..`` stops at the root, an absolute target starts there), so no name can lead a
write outside the image; the last component is never followed (a file replaces a link).
Writing under a path that is a file is an error.  Nothing is ever written to the host's
filesystem: contents go to one private temporary file without a name.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Literal, Protocol

from reprolock import limits
from reprolock.bounded import STEP
from reprolock.errors import SourceError
from reprolock.image.files import spool, window
from reprolock.image.view import FilesystemView

Kind = Literal["file", "dir", "symlink", "hardlink", "whiteout"]


@dataclass(frozen=True, slots=True)
class Content:
    """A file's bytes in a `Store`: where they start, how many."""

    offset: int
    size: int


class Store:
    """File contents, appended to one unnamed temporary file (in ``TMPDIR``)."""

    def __init__(self) -> None:
        self._file = spool()
        self._end = 0

    def add(self, data: bytes) -> Content:
        self._write(data)
        content = Content(self._end, len(data))
        self._end += len(data)
        return content

    def _write(self, data: bytes, *, at: int | None = None) -> None:
        """Append ``data`` (at ``at``, the end by default); a full disk is a `SourceError`
        (reading errors of a caller's stream stay the caller's)."""
        try:
            self._file.seek(self._end if at is None else at)
            self._file.write(data)
        except OSError as exc:
            raise SourceError(
                f"cannot write the build's temporary file: {exc.strerror or exc}.",
                hint="Free space in the temporary folder (TMPDIR), or point TMPDIR elsewhere.",
            ) from None

    def copy(
        self,
        stream: IO[bytes],
        *,
        cap: int,
        what: str,
        limit_name: str,
        on_data: Callable[[bytes], None] | None = None,
    ) -> Content:
        """All of ``stream`` (at most ``cap`` bytes, else `SourceError`)."""
        size = 0
        while chunk := stream.read(STEP):
            if size + len(chunk) > cap:
                raise limits.exceeded(what, limit_name, actual=f"over {size + len(chunk)} bytes")
            if on_data is not None:
                on_data(chunk)
            self._write(chunk, at=self._end + size)
            size += len(chunk)
        content = Content(self._end, size)
        self._end += size
        return content

    def read(self, content: Content) -> bytes:
        self._file.flush()
        with self.open(content) as handle:
            return handle.read()

    def open(self, content: Content) -> IO[bytes]:
        self._file.flush()
        return window(self._file.fileno(), content.offset, content.size, "the build's spool")

    def sha256(self, content: Content) -> str:
        digest = hashlib.sha256()
        with self.open(content) as handle:
            while chunk := handle.read(STEP):
                digest.update(chunk)
        return digest.hexdigest()

    def close(self) -> None:
        self._file.close()


@dataclass(slots=True, kw_only=True)
class Node:
    """One path of a layer."""

    path: str  # relative to the image root, no leading "/", normalized and real
    kind: Kind
    mode: int = 0o644  # permission bits, with setuid/setgid/sticky
    uid: int = 0
    gid: int = 0
    mtime: int = 0
    link: str = ""  # a symlink's target as written; a hard link's source (a real path)
    content: Content | None = None


@dataclass(frozen=True, slots=True)
class Found:
    """What a lower layer has at a path (links not followed)."""

    kind: Literal["file", "dir", "symlink", "other"]
    mode: int = 0
    link: str = ""


class Lower(Protocol):
    """The filesystem below a layer."""

    def lookup(self, path: str) -> Found | None:
        """What is at ``path`` (a real path), links not followed; None when nothing is."""
        ...


class Nothing:
    """No lower layer (a test, or an image from scratch)."""

    def lookup(self, path: str) -> Found | None:
        return None


class ViewLower:
    """A merged view of image layers (the base image) as a `Lower`."""

    def __init__(self, view: FilesystemView) -> None:
        self.view = view

    def lookup(self, path: str) -> Found | None:
        node = self.view.node(path, follow=False)
        if node is None:
            return None
        entry = node.entry
        if entry.kind == "symlink":
            return Found("symlink", entry.mode, entry.link or "")
        if entry.kind in ("file", "hardlink"):
            return Found("file", entry.mode)
        if entry.kind == "dir":
            return Found("dir", entry.mode)
        return Found("other", entry.mode)


def clean(path: str, what: str) -> str:
    """``path`` (absolute or not) relative to the image root, normalized; `SourceError`
    when it climbs out, is empty, holds a NUL, or is deeper than ``limits.path_depth``."""
    if "\x00" in path:
        raise SourceError(f"{what}: a path holds a NUL character.", hint=_HOSTILE)
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            raise SourceError(
                f"{what}: the path {_show(path)} climbs out of its root.", hint=_HOSTILE
            )
        if len(part.encode("utf-8", "surrogateescape")) > 255:
            raise SourceError(f"{what}: a name in {_show(path)} is too long.", hint=_HOSTILE)
        parts.append(part)
    if len(parts) > limits.current().path_depth:
        raise limits.exceeded(f"{what}: the path {_show(path)}", "path_depth")
    return "/".join(parts)


_HOSTILE = "The input is damaged or hostile; do not use it."


def _show(path: str) -> str:
    shown = path.encode("unicode_escape").decode("ascii")
    return '"' + (shown if len(shown) <= 120 else shown[:100] + "…" + shown[-10:]) + '"'


class Tree:
    """The paths one layer writes, over ``lower``."""

    def __init__(self, lower: Lower, store: Store, *, mtime: int, what: str) -> None:
        self.lower = lower
        self.store = store
        self.mtime = mtime
        self.what = what
        self._nodes: dict[str, Node] = {}
        self._entries_left = limits.current().image_entries

    # -- reading --------------------------------------------------------------------------
    def lookup(self, path: str) -> Found | None:
        """What the layer, or the layers below, have at the real ``path``."""
        node = self._nodes.get(path)
        if node is None:
            return self.lower.lookup(path) if not self._whited(path) else None
        if node.kind == "whiteout":
            return None
        if node.kind in ("file", "hardlink"):
            return Found("file", node.mode)
        if node.kind == "symlink":
            return Found("symlink", node.mode, node.link)
        return Found("dir", node.mode)

    def _whited(self, path: str) -> bool:
        current = path
        while current:
            node = self._nodes.get(current)
            if node is not None and node.kind == "whiteout":
                return True
            current = posixpath.dirname(current)
        return False

    def node(self, path: str) -> Node | None:
        return self._nodes.get(path)

    def real(self, path: str) -> str:
        """``path`` with the links in its folders followed (not its last component)."""
        relative = clean(path, self.what)
        folder, leaf = posixpath.split(relative)
        if not leaf:
            return ""
        parent = self.resolve(folder) if folder else ""
        found = self.lookup(parent) if parent else None
        if found is not None and found.kind != "dir":
            raise SourceError(
                f"{self.what}: cannot write {_show(path)}: /{parent} is a file, not a folder.",
                hint="Two parts of the image disagree on what this path is.",
            )
        return posixpath.join(parent, leaf) if parent else leaf

    def resolve(self, path: str) -> str:
        """``path`` with every link followed inside the root; `SourceError` for a loop,
        or a folder on the way that is a file."""
        caps = limits.current()
        hops = caps.link_hops
        todo = [p for p in reversed(path.split("/")) if p and p != "."]
        done: list[str] = []
        while todo:
            if len(done) > caps.path_depth or len(todo) > 4 * caps.path_depth:
                raise limits.exceeded(f"{self.what}: the path {_show(path)}", "path_depth")
            part = todo.pop()
            if part == "..":
                if done:
                    done.pop()
                continue
            current = "/".join([*done, part])
            found = self.lookup(current)
            if found is not None and found.kind == "symlink":
                hops -= 1
                if hops < 0:
                    raise limits.exceeded(
                        f"{self.what}: {_show(path)} is a chain of links that", "link_hops"
                    )
                todo.extend(p for p in reversed(found.link.split("/")) if p and p != ".")
                if found.link.startswith("/"):
                    done = []
                continue
            if found is not None and found.kind != "dir" and todo:
                raise SourceError(
                    f"{self.what}: cannot write {_show(path)}: /{current} is a file, not a folder.",
                    hint="Two parts of the image disagree on what this path is.",
                )
            done.append(part)
        return "/".join(done)

    # -- writing --------------------------------------------------------------------------
    def add(self, node: Node) -> Node:
        """Add ``node`` at its (real) path, replacing what this layer had there (a folder
        replaced by something else goes with everything under it)."""
        if not node.path:
            raise SourceError(f"{self.what}: refusing to replace the image root.", hint=_HOSTILE)
        old = self._nodes.get(node.path)
        if old is None:
            self._entries_left -= 1
            if self._entries_left < 0:
                raise limits.exceeded(f"{self.what}: the number of paths", "image_entries")
        elif old.kind == "dir" and node.kind != "dir":
            prefix = node.path + "/"
            for path in [p for p in self._nodes if p.startswith(prefix)]:
                del self._nodes[path]
        self._nodes[node.path] = node
        return node

    def file(
        self,
        path: str,
        content: Content,
        *,
        mode: int = 0o644,
        uid: int = 0,
        gid: int = 0,
        mtime: int | None = None,
    ) -> Node:
        return self.add(
            Node(
                path=self.real(path),
                kind="file",
                mode=mode,
                uid=uid,
                gid=gid,
                mtime=self.mtime if mtime is None else mtime,
                content=content,
            )
        )

    def data(self, path: str, data: bytes, *, mode: int = 0o644) -> Node:
        return self.file(path, self.store.add(data), mode=mode)

    def dir(
        self,
        path: str,
        *,
        mode: int = 0o755,
        uid: int = 0,
        gid: int = 0,
        mtime: int | None = None,
    ) -> None:
        """A folder, unless one is there already (through a link too: a merged ``/usr``'s
        ``/lib`` stays a link), which keeps its metadata, as dpkg leaves it."""
        real = self.real(path)
        found = self.lookup(real)
        if found is not None and found.kind == "symlink":
            found = self.lookup(self.resolve(real))
        if found is not None and found.kind == "dir":
            return
        mtime = self.mtime if mtime is None else mtime
        self.add(Node(path=real, kind="dir", mode=mode, uid=uid, gid=gid, mtime=mtime))

    def symlink(
        self, path: str, target: str, *, uid: int = 0, gid: int = 0, mtime: int | None = None
    ) -> Node:
        if "\x00" in target or not target:
            raise SourceError(f"{self.what}: the link {_show(path)} has no usable target.")
        return self.add(
            Node(
                path=self.real(path),
                kind="symlink",
                mode=0o777,
                uid=uid,
                gid=gid,
                mtime=self.mtime if mtime is None else mtime,
                link=target,
            )
        )

    def hardlink(self, path: str, source: str) -> Node:
        """A hard link to ``source``, a file this layer wrote (a real path)."""
        original = self._nodes.get(source)
        while original is not None and original.kind == "hardlink":
            original = self._nodes.get(original.link)
        if original is None or original.kind != "file":
            raise SourceError(
                f"{self.what}: the hard link {_show(path)} names {_show(source)}, which is "
                "not a file written before it.",
                hint=_HOSTILE,
            )
        return self.add(
            Node(
                path=self.real(path),
                kind="hardlink",
                mode=original.mode,
                uid=original.uid,
                gid=original.gid,
                mtime=original.mtime,
                link=original.path,
            )
        )

    def whiteout(self, path: str) -> None:
        """Delete ``path`` (a real path) of the layers below."""
        self.add(Node(path=path, kind="whiteout", mode=0o644, mtime=self.mtime))

    # -- the result -----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(self._nodes.values())

    def nodes(self) -> list[Node]:
        """Every path in tar order: sorted, each folder before what it holds (folders
        the layer did not name are added with the mode the layers below give them, owned
        by root), and each set of hard links led by the first of its paths."""
        nodes = dict(self._nodes)
        for path in list(nodes):
            parent = posixpath.dirname(path)
            while parent and parent not in nodes:
                found = self.lower.lookup(parent)
                mode = found.mode & 0o7777 if found and found.kind == "dir" and found.mode else 0
                nodes[parent] = Node(path=parent, kind="dir", mode=mode or 0o755, mtime=self.mtime)
                parent = posixpath.dirname(parent)
        ordered = [nodes[p] for p in sorted(nodes, key=_sort_key)]
        return _lead_hardlinks(ordered)


def _sort_key(path: str) -> bytes:
    return path.encode("utf-8", "surrogateescape")


def _lead_hardlinks(nodes: list[Node]) -> list[Node]:
    """Hard links rewritten so that each group's first path in tar order holds the
    content and the others link to it (a tar link must follow its file)."""
    by_path = {n.path: n for n in nodes}
    groups: dict[str, list[Node]] = {}
    for node in nodes:
        if node.kind == "hardlink":
            original = by_path.get(node.link)
            while original is not None and original.kind == "hardlink":
                original = by_path.get(original.link)
            if original is None:  # its file was replaced since: the link stays as it was
                continue
            groups.setdefault(original.path, [original]).append(node)
    out = {n.path: n for n in nodes}
    for original_path, members in groups.items():
        original = by_path[original_path]
        leader = min((m.path for m in members), key=_sort_key)
        for member in members:
            if member.path == leader:
                out[member.path] = Node(
                    path=member.path,
                    kind="file",
                    mode=original.mode,
                    uid=original.uid,
                    gid=original.gid,
                    mtime=original.mtime,
                    content=original.content,
                )
            else:
                out[member.path] = Node(
                    path=member.path,
                    kind="hardlink",
                    mode=original.mode,
                    uid=original.uid,
                    gid=original.gid,
                    mtime=original.mtime,
                    link=leader,
                )
    return [out[n.path] for n in nodes]
