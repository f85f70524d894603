"""OCI image-spec values shared by the registry client and the image readers.

Parsers take the raw JSON bytes and return frozen values; they raise ValueError
with a message naming the bad field.  Docker's v2 schema 2 types are accepted
beside the OCI ones (they have the same shape).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from reprolock.model.digest import Digest
from reprolock.model.platform import Platform

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
ACCEPT_MANIFESTS = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))


@dataclass(frozen=True, slots=True, kw_only=True)
class OciPlatform:
    os: str
    architecture: str
    variant: str | None = None

    def matches(self, wanted: Platform) -> bool:
        """True when this index entry is an image for ``wanted``."""
        if self.os != wanted.os or self.architecture != wanted.architecture:
            return False
        if wanted.architecture == "arm64":  # v8 is the only arm64 variant; often left out
            return self.variant in (None, "", "v8")
        return (self.variant or None) == (wanted.variant or None)

    def __str__(self) -> str:
        return f"{self.os}/{self.architecture}" + (f"/{self.variant}" if self.variant else "")


@dataclass(frozen=True, slots=True, kw_only=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    platform: OciPlatform | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Index:
    media_type: str
    manifests: tuple[Descriptor, ...]

    def for_platform(self, platform: Platform) -> Descriptor | None:
        return next(
            (m for m in self.manifests if m.platform and m.platform.matches(platform)), None
        )

    def platforms(self) -> list[str]:
        return sorted(
            {
                str(m.platform)
                for m in self.manifests
                if m.platform and m.platform.architecture != "unknown"
            }
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageConfig:
    """What later stages need from an image config blob."""

    os: str
    architecture: str
    variant: str | None
    env: tuple[tuple[str, str], ...]
    user: str | None
    labels: tuple[tuple[str, str], ...]
    entrypoint: tuple[str, ...] | None
    cmd: tuple[str, ...] | None
    working_dir: str | None
    diff_ids: tuple[Digest, ...]
    history: tuple[str, ...] = ()  # created_by of each history entry, in order


def _object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"the {what} is not JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise ValueError(f"the {what} is not a JSON object")
    return value


def _descriptor(value: object, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise ValueError(f"{where} is not an object")
    try:
        digest = Digest.parse(str(value["digest"]))
        size = value["size"]
        media_type = str(value.get("mediaType", ""))
    except KeyError as exc:
        raise ValueError(f"{where} has no {exc.args[0]}") from exc
    if not isinstance(size, int) or size < 0:
        raise ValueError(f"{where}.size is not a non-negative integer")
    platform = None
    if isinstance(value.get("platform"), dict):
        p = value["platform"]
        platform = OciPlatform(
            os=str(p.get("os", "")),
            architecture=str(p.get("architecture", "")),
            variant=p.get("variant") or None,
        )
    return Descriptor(media_type=media_type, digest=digest, size=size, platform=platform)


def parse_manifest(data: bytes, media_type: str) -> Manifest | Index:
    """An image manifest or an index (manifest list), by media type or by shape."""
    doc = _object(data, "manifest")
    kind = doc.get("mediaType") or media_type
    if kind in INDEX_TYPES or (not kind and "manifests" in doc):
        entries = doc.get("manifests")
        if not isinstance(entries, list):
            raise ValueError("the index has no manifests list")
        return Index(
            media_type=kind or OCI_INDEX,
            manifests=tuple(_descriptor(m, f"manifests[{i}]") for i, m in enumerate(entries)),
        )
    if kind in MANIFEST_TYPES or (not kind and "layers" in doc):
        layers = doc.get("layers")
        if not isinstance(layers, list):
            raise ValueError("the manifest has no layers list")
        return Manifest(
            media_type=kind or OCI_MANIFEST,
            config=_descriptor(doc.get("config"), "config"),
            layers=tuple(_descriptor(x, f"layers[{i}]") for i, x in enumerate(layers)),
        )
    raise ValueError(f'unsupported manifest media type "{kind}" (schema 1 manifests are obsolete)')


def _strings(value: object) -> tuple[str, ...] | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def parse_config(data: bytes) -> ImageConfig:
    doc = _object(data, "image config")
    config = doc.get("config") or {}
    if not isinstance(config, dict):
        raise ValueError("the image config's config is not an object")
    env: list[tuple[str, str]] = []
    for item in config.get("Env") or ():
        if isinstance(item, str):
            name, _, value = item.partition("=")
            env.append((name, value))
    labels = config.get("Labels") or {}
    rootfs = doc.get("rootfs") or {}
    diff_ids = tuple(Digest.parse(str(d)) for d in (rootfs.get("diff_ids") or ()))
    return ImageConfig(
        os=str(doc.get("os", "")),
        architecture=str(doc.get("architecture", "")),
        variant=doc.get("variant") or None,
        env=tuple(env),
        user=config.get("User") or None,
        labels=tuple(sorted((str(k), str(v)) for k, v in labels.items()))
        if isinstance(labels, dict)
        else (),
        entrypoint=_strings(config.get("Entrypoint")),
        cmd=_strings(config.get("Cmd")),
        working_dir=config.get("WorkingDir") or None,
        diff_ids=diff_ids,
        history=tuple(
            str(h.get("created_by", "")) for h in doc.get("history") or () if isinstance(h, dict)
        ),
    )
