"""``docker save`` tarballs (``docker-archive:PATH``), the legacy and the OCI-style layout."""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from reprolock.errors import SourceError
from reprolock.image.scan import safe_path
from reprolock.image.source import LayerRef, config_of
from reprolock.model import Digest
from reprolock.model.oci import ImageConfig, Manifest

_HINT = "Check that the file is a complete `docker save` output."


class _Slice(io.RawIOBase):
    """``length`` bytes of a file from ``offset``, with a handle of its own (thread-safe)."""

    def __init__(self, path: Path, offset: int, length: int) -> None:
        self.handle = path.open("rb")
        self.handle.seek(offset)
        self.left = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self.left <= 0:
            return 0
        data = self.handle.read(min(len(buffer), self.left))
        buffer[: len(data)] = data
        self.left -= len(data)
        return len(data)

    def close(self) -> None:
        self.handle.close()
        super().close()


class TarMembers:
    """Random access to the members of a tar file by name (normalized).

    For a plain tar, members are read through handles of their own, so layers can
    be read in parallel; a compressed archive is read through tarfile, one at a time.
    """

    def __init__(self, path: Path, what: str) -> None:
        self.what = what
        self.path = path
        self._lock = threading.Lock()
        try:
            with path.open("rb") as probe:
                magic = probe.read(6)
            self.plain = not (
                magic[:2] == b"\x1f\x8b" or magic[:3] == b"BZh" or magic[:6] == b"\xfd7zXZ\x00"
            )
            self.tar = tarfile.open(path, "r:*")  # noqa: SIM115 - closed by close()
            self.members = {
                safe_path(m.name, what): m
                for m in self.tar.getmembers()
                if m.isreg() or m.islnk() or m.issym()
            }
        except FileNotFoundError:
            raise SourceError(f"{path}: no such file.") from None
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise SourceError(f"{what}: not a readable tar archive ({exc}).", hint=_HINT) from None

    def has(self, name: str) -> bool:
        return safe_path(name, self.what) in self.members

    def _member(self, name: str) -> tarfile.TarInfo:
        member = self.members.get(safe_path(name, self.what))
        while member is not None and (member.islnk() or member.issym()):
            member = self.members.get(safe_path(member.linkname, self.what))
        if member is None:
            raise SourceError(f"{self.what}: has no {name}.", hint=_HINT)
        return member

    def open(self, name: str) -> IO[bytes]:
        member = self._member(name)
        if self.plain:
            return io.BufferedReader(_Slice(self.path, member.offset_data, member.size), 1 << 20)
        with self._lock:
            data = self.tar.extractfile(member)
            assert data is not None
            return io.BytesIO(data.read())

    def read(self, name: str) -> bytes:
        with self.open(name) as handle:
            try:
                return handle.read()
            except (tarfile.TarError, EOFError, OSError) as exc:
                raise SourceError(
                    f"{self.what}: {name} is truncated ({exc}).", hint=_HINT
                ) from None

    def size(self, name: str) -> int:
        return self._member(name).size

    def close(self) -> None:
        self.tar.close()


class DockerArchive:
    def __init__(self, path: Path, *, tag: str | None = None) -> None:
        self.description = f"docker-archive:{path}"
        self.tar = TarMembers(path, self.description)
        try:
            entries = json.loads(self.tar.read("manifest.json"))
        except ValueError as exc:
            raise SourceError(
                f"{self.description}: manifest.json is not JSON ({exc}).", hint=_HINT
            ) from None
        if not isinstance(entries, list) or not entries:
            raise SourceError(f"{self.description}: manifest.json lists no image.", hint=_HINT)
        self.entry = self._choose(entries, tag)
        self._config: bytes | None = None

    def _choose(self, entries: list[Any], tag: str | None) -> dict[str, Any]:
        if tag is None:
            if len(entries) > 1:
                names = ", ".join(t for e in entries for t in e.get("RepoTags") or ["<untagged>"])
                raise SourceError(
                    f"{self.description}: holds {len(entries)} images ({names}).",
                    hint="Name one: docker-archive:PATH:TAG.",
                )
            return dict(entries[0])
        for entry in entries:
            tags = [str(t) for t in entry.get("RepoTags") or []]
            if tag in tags or any(t.rsplit("/", 1)[-1] == tag for t in tags):
                return dict(entry)
        raise SourceError(f'{self.description}: has no image tagged "{tag}".')

    def config_bytes(self) -> bytes:
        if self._config is None:
            self._config = self.tar.read(str(self.entry["Config"]))
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
        for i, name in enumerate(self.entry.get("Layers") or []):
            digest = None
            parts = str(name).split("/")
            if len(parts) == 3 and parts[0] == "blobs":  # docker 25+: blobs/sha256/<hex>
                digest = Digest(parts[1], parts[2])
            out.append(
                LayerRef(index=i, digest=digest, size=self.tar.size(str(name)), location=str(name))
            )
        return out

    @contextlib.contextmanager
    def open_layer(self, layer: LayerRef) -> Iterator[IO[bytes]]:
        with self.tar.open(layer.location) as handle:
            yield handle

    def close(self) -> None:
        self.tar.close()
