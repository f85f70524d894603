"""OCI image layouts: a folder (``oci:PATH[:TAG]``) or a tar of one (``oci-archive:PATH``)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

from reprolock.errors import SourceError
from reprolock.image.docker_archive import TarMembers
from reprolock.image.source import LayerRef, config_of
from reprolock.model import Digest, Platform
from reprolock.model.oci import (
    Descriptor,
    ImageConfig,
    Index,
    Manifest,
    parse_manifest,
)

REF_NAME = "org.opencontainers.image.ref.name"
_HINT = "Check that it is a complete OCI image layout (index.json and blobs/)."


class OciLayout:
    """An OCI layout read through ``open_path`` (a folder or an archive)."""

    def __init__(
        self,
        description: str,
        open_path: Callable[[str], IO[bytes]],
        *,
        tag: str | None,
        platform: Platform,
    ) -> None:
        self.description = description
        self._open = open_path
        index = self._json("index.json")
        self._manifest_digest, self._manifest = self._select(index, tag, platform)
        self._config: bytes | None = None

    def _bytes(self, path: str) -> bytes:
        try:
            with self._open(path) as handle:
                return handle.read()
        except FileNotFoundError:
            raise SourceError(f"{self.description}: has no {path}.", hint=_HINT) from None

    def _json(self, path: str) -> dict[str, object]:
        try:
            value = json.loads(self._bytes(path))
        except ValueError as exc:
            raise SourceError(
                f"{self.description}: {path} is not JSON ({exc}).", hint=_HINT
            ) from None
        if not isinstance(value, dict):
            raise SourceError(f"{self.description}: {path} is not a JSON object.", hint=_HINT)
        return value

    def blob(self, digest: Digest) -> bytes:
        data = self._bytes(f"blobs/{digest.algorithm}/{digest.hex}")
        if Digest.of(data, digest.algorithm) != digest:
            raise SourceError(
                f"{self.description}: blob {digest} does not match its digest.",
                hint="The layout was altered; do not use it.",
            )
        return data

    def _select(
        self, index: dict[str, object], tag: str | None, platform: Platform
    ) -> tuple[Digest, Manifest]:
        entries = index.get("manifests")
        if not isinstance(entries, list) or not entries:
            raise SourceError(f"{self.description}: index.json lists no image.", hint=_HINT)
        if tag is not None:
            chosen = [
                e
                for e in entries
                if isinstance(e, dict) and (e.get("annotations") or {}).get(REF_NAME) == tag
            ]
            if not chosen:
                names = sorted(
                    {
                        str((e.get("annotations") or {}).get(REF_NAME))
                        for e in entries
                        if isinstance(e, dict) and (e.get("annotations") or {})
                    }
                )
                raise SourceError(
                    f'{self.description}: has no image named "{tag}".',
                    hint=f"Names in index.json: {', '.join(names) or 'none'}.",
                )
            entries = chosen
        document = parse_manifest(json.dumps({"manifests": entries}).encode(), "")
        assert isinstance(document, Index)
        return self._descend(document, platform, depth=0)

    def _descend(self, index: Index, platform: Platform, depth: int) -> tuple[Digest, Manifest]:
        if depth > 4:
            raise SourceError(f"{self.description}: indexes nest too deeply.", hint=_HINT)
        entry: Descriptor | None
        if len(index.manifests) == 1 and index.manifests[0].platform is None:
            entry = index.manifests[0]
        else:
            entry = index.for_platform(platform)
        if entry is None:
            raise SourceError(
                f"{self.description}: has no image for {platform}; it has "
                f"{', '.join(index.platforms()) or 'none'}.",
                hint="Pass --platform.",
            )
        try:
            document = parse_manifest(self.blob(entry.digest), entry.media_type)
        except ValueError as exc:
            raise SourceError(f"{self.description}: manifest {entry.digest}: {exc}.") from None
        if isinstance(document, Index):
            return self._descend(document, platform, depth + 1)
        return entry.digest, document

    def config_bytes(self) -> bytes:
        if self._config is None:
            self._config = self.blob(self._manifest.config.digest)
        return self._config

    def config(self) -> ImageConfig:
        return config_of(self.config_bytes(), self.description)

    def manifest(self) -> Manifest | None:
        return self._manifest

    def manifest_digest(self) -> Digest | None:
        return self._manifest_digest

    def layers(self) -> Sequence[LayerRef]:
        return [
            LayerRef(
                index=i,
                digest=d.digest,
                size=d.size,
                media_type=d.media_type,
                location=f"blobs/{d.digest.algorithm}/{d.digest.hex}",
            )
            for i, d in enumerate(self._manifest.layers)
        ]

    @contextlib.contextmanager
    def open_layer(self, layer: LayerRef) -> Iterator[IO[bytes]]:
        with self._open(layer.location) as handle:
            yield handle


def open_oci_dir(path: Path, *, tag: str | None, platform: Platform) -> OciLayout:
    if not (path / "index.json").is_file():
        raise SourceError(f"{path}: is not an OCI image layout (no index.json).", hint=_HINT)

    def opener(name: str) -> IO[bytes]:
        return (path / name).open("rb")

    return OciLayout(f"oci:{path}", opener, tag=tag, platform=platform)


def open_oci_archive(path: Path, *, tag: str | None, platform: Platform) -> OciLayout:
    members = TarMembers(path, f"oci-archive:{path}")

    def opener(name: str) -> IO[bytes]:
        if not members.has(name):
            raise FileNotFoundError(name)
        return members.open(name)

    return OciLayout(f"oci-archive:{path}", opener, tag=tag, platform=platform)
