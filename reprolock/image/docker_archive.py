"""``docker save`` tarballs (``docker-archive:PATH``), the legacy and the OCI-style layout."""

from __future__ import annotations

import contextlib
import posixpath
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from reprolock import limits
from reprolock.bounded import STEP, Decompressor, read_capped, sniff
from reprolock.errors import SourceError
from reprolock.image.files import open_regular, spool, window
from reprolock.image.scan import safe_path
from reprolock.image.source import LayerRef, config_of
from reprolock.image.tarheaders import members, open_tar
from reprolock.model import Digest
from reprolock.model.oci import ImageConfig, Manifest, load_json

_HINT = "Check that the file is a complete `docker save` output."
_BLOB = re.compile(r"blobs/sha256/([0-9a-f]{64})")


@dataclass(frozen=True, slots=True)
class _Member:
    kind: Literal["file", "symlink", "hardlink"]
    offset: int
    size: int
    link: str = ""  # a link's target, normalized relative to the archive's root


class TarMembers:
    """Random access to the members of an image archive by name (normalized).

    A compressed archive (gzip, xz, zstd, bzip2) is decompressed once, within the caps, into a
    private temporary file without a name; members are then read with ``pread``, so any
    number of layers can be read at once.  Only the index of members is kept in memory.
    """

    def __init__(self, file: IO[bytes], what: str) -> None:
        """Takes ``file`` over (closed by `close`)."""
        self.what = what
        self.file = file
        try:
            self.file = _uncompressed(file, what)
            self.members = _index(self.file, what)
        except BaseException:
            self.file.close()
            raise

    @classmethod
    def from_path(cls, path: Path, what: str) -> TarMembers:
        try:
            file = open_regular(path, what)
        except FileNotFoundError:
            raise SourceError(f"{path}: no such file.") from None
        return cls(file, what)

    def has(self, name: str) -> bool:
        return safe_path(name, self.what) in self.members

    def _member(self, name: str) -> _Member:
        path = safe_path(name, self.what)
        member = self.members.get(path)
        hops = limits.current().link_hops
        while member is not None and member.kind != "file":
            hops -= 1
            if hops < 0:
                raise limits.exceeded(f"{self.what}: {name} is a chain of links that", "link_hops")
            member = self.members.get(member.link)
        if member is None:
            raise SourceError(f"{self.what}: has no {name}.", hint=_HINT)
        return member

    def open(self, name: str) -> IO[bytes]:
        """The member's bytes, unbuffered: every reader of an image reads in large steps
        (`read_capped`, a layer scan), each one ``pread`` into the bytes it returns."""
        member = self._member(name)
        return window(
            self.file.fileno(),
            member.offset,
            member.size,
            f"{self.what}: {name}",
            buffered=False,
        )

    def read(self, name: str, cap: int, limit_name: str) -> bytes:
        """A whole member of at most ``cap`` bytes (``limit_name`` names the cap)."""
        member = self._member(name)
        if member.size > cap:
            raise limits.exceeded(f"{self.what}: {name}", limit_name, actual=f"{member.size} bytes")
        with self.open(name) as handle:
            return read_capped(handle, cap, f"{self.what}: {name}", limit_name)

    def size(self, name: str) -> int:
        return self._member(name).size

    def close(self) -> None:
        self.file.close()


def _uncompressed(file: IO[bytes], what: str) -> IO[bytes]:
    """``file`` itself if it is a plain tar, else a spool of it decompressed (and
    ``file`` closed)."""
    head = file.read(6)
    file.seek(0)
    kind = sniff(head)
    if kind == "plain":
        return file
    out = spool()
    try:
        source = Decompressor(
            file,
            kind,
            what=what,
            max_output=limits.current().layer_bytes,
            limit_name="layer_bytes",
        )
        while chunk := source.read(STEP):
            out.write(chunk)
        out.flush()
        out.seek(0)
    except OSError as exc:
        out.close()
        raise SourceError(
            f"{what}: cannot decompress it into a temporary file ({exc.strerror or exc}).",
            hint="Free space in the temporary folder (TMPDIR), or decompress it yourself.",
        ) from None
    except BaseException:
        out.close()
        raise
    file.close()
    return out


def _index(file: IO[bytes], what: str) -> dict[str, _Member]:
    """The archive's regular files and links by normalized name."""
    tar = open_tar(file, what, hint=_HINT, stream=False)
    cap = limits.current().archive_members
    index: dict[str, _Member] = {}
    for count, member in enumerate(members(tar, what, hint=_HINT), 1):
        if count > cap:
            raise limits.exceeded(f"{what}: its members", "archive_members")
        name = safe_path(member.name, what)
        if member.isreg():
            index[name] = _Member("file", member.offset_data, member.size)
        elif member.islnk():
            index[name] = _Member("hardlink", 0, 0, safe_path(member.linkname, what))
        elif member.issym():
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
            if member.linkname.startswith("/") or target.startswith(".."):
                continue  # a link out of the archive: as if absent
            index[name] = _Member("symlink", 0, 0, safe_path(target, what))
    return index


class DockerArchive:
    def __init__(self, tar: TarMembers, *, description: str, tag: str | None = None) -> None:
        """Takes ``tar`` over (closed by `close`, or here if it is not a docker archive)."""
        self.description = description
        self.tar = tar
        try:
            try:
                value = load_json(
                    tar.read("manifest.json", limits.current().manifest_bytes, "manifest_bytes"),
                    "manifest.json",
                )
            except ValueError as exc:
                raise SourceError(f"{self.description}: {exc}.", hint=_HINT) from None
            self.entry = self._choose(_entries(value, self.description), tag)
        except BaseException:
            tar.close()
            raise
        self._config: bytes | None = None

    @classmethod
    def from_path(cls, path: Path, *, tag: str | None = None) -> DockerArchive:
        description = f"docker-archive:{path}"
        return cls(TarMembers.from_path(path, description), description=description, tag=tag)

    def _choose(self, entries: list[_Entry], tag: str | None) -> _Entry:
        if tag is None:
            if len(entries) > 1:
                names = ", ".join(t for e in entries for t in e.tags or ["<untagged>"])
                raise SourceError(
                    f"{self.description}: holds {len(entries)} images ({names}).",
                    hint="Name one: docker-archive:PATH:TAG.",
                )
            return entries[0]
        for entry in entries:
            if tag in entry.tags or any(t.rsplit("/", 1)[-1] == tag for t in entry.tags):
                return entry
        raise SourceError(f'{self.description}: has no image tagged "{tag}".')

    def config_bytes(self) -> bytes:
        if self._config is None:
            self._config = self.tar.read(
                self.entry.config, limits.current().config_bytes, "config_bytes"
            )
        return self._config

    def config(self) -> ImageConfig:
        return config_of(self.config_bytes(), self.description)

    def manifest(self) -> Manifest | None:
        return None

    def manifest_digest(self) -> Digest | None:
        return None

    def config_digest(self) -> Digest:
        return Digest.of(self.config_bytes())

    def layers(self) -> Sequence[LayerRef]:
        out = []
        for i, name in enumerate(self.entry.layers):
            match = _BLOB.fullmatch(safe_path(name, self.description))
            digest = Digest("sha256", match.group(1)) if match else None  # docker 25+
            out.append(LayerRef(index=i, digest=digest, size=self.tar.size(name), location=name))
        return out

    @contextlib.contextmanager
    def open_layer(self, layer: LayerRef) -> Iterator[IO[bytes]]:
        with self.tar.open(layer.location) as handle:
            yield handle

    def close(self) -> None:
        self.tar.close()


@dataclass(frozen=True, slots=True)
class _Entry:
    """One image of ``manifest.json``."""

    config: str
    layers: tuple[str, ...]
    tags: tuple[str, ...]


def _entries(value: object, what: str) -> list[_Entry]:
    """``manifest.json``'s images, each field checked for its type."""
    if not isinstance(value, list) or not value:
        raise SourceError(f"{what}: manifest.json lists no image.", hint=_HINT)
    out = []
    for i, item in enumerate(value):
        where = f"{what}: manifest.json[{i}]"
        if not isinstance(item, dict):
            raise SourceError(f"{where} is not an object.", hint=_HINT)
        config = item.get("Config")
        if not isinstance(config, str) or not config:
            raise SourceError(f"{where}.Config is not a file name.", hint=_HINT)
        out.append(
            _Entry(
                config=config,
                layers=_names(item, "Layers", where),
                tags=_names(item, "RepoTags", where),
            )
        )
    return out


def _names(item: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    """A list of non-empty strings (absent or null: none)."""
    value = item.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise SourceError(f"{where}.{key} is not a list of names.", hint=_HINT)
    return tuple(value)
