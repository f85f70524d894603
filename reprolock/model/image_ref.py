"""Image references: ``[registry/]repository[:tag][@digest]``, normalized as docker does."""

from __future__ import annotations

import re
from dataclasses import dataclass

from reprolock.model.digest import Digest

DOCKER_HUB = "docker.io"
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_HOST = re.compile(r"^(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::\d+)?$")


@dataclass(frozen=True, slots=True, order=True)
class ImageRef:
    """A parsed image reference; ``registry`` and ``repository`` are normalized."""

    registry: str
    repository: str
    tag: str | None = None
    digest: Digest | None = None

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        """Parse ``python:3.11-slim``, ``nvidia/cuda:12.4.1-runtime-ubuntu22.04@sha256:…``.

        A name without a registry host means Docker Hub; a one-part Docker Hub
        name lives under ``library/``.  No tag and no digest means ``latest``.
        """
        raw = text.strip()
        if not raw or raw != text or any(c.isspace() for c in raw):
            raise ValueError(
                f'"{text}" is not an image reference; write it like "python:3.11-slim"'
            )
        digest: Digest | None = None
        if "@" in raw:
            raw, _, digest_text = raw.partition("@")
            digest = Digest.parse(digest_text)
        tag: str | None = None
        last_slash = raw.rfind("/")
        colon = raw.rfind(":")
        if colon > last_slash:
            raw, tag = raw[:colon], raw[colon + 1 :]
            if not _TAG.match(tag):
                raise ValueError(f'invalid tag "{tag}" in image reference "{text}"')
        parts = raw.split("/")
        first = parts[0]
        if len(parts) > 1 and ("." in first or ":" in first or first == "localhost"):
            registry, path = first, parts[1:]
            if not _HOST.match(registry):
                raise ValueError(f'invalid registry host "{registry}" in "{text}"')
        else:
            registry, path = DOCKER_HUB, parts
        if registry in ("index.docker.io", "registry-1.docker.io"):
            registry = DOCKER_HUB
        if registry == DOCKER_HUB and len(path) == 1:
            path = ["library", *path]
        for component in path:
            if not _COMPONENT.match(component):
                raise ValueError(
                    f'invalid repository name "{"/".join(path)}" in image reference "{text}"; '
                    "names are lowercase letters, digits and separators (. _ -)"
                )
        if tag is None and digest is None:
            tag = "latest"
        return cls(registry, "/".join(path), tag, digest)

    @property
    def familiar(self) -> str:
        """The short form users write: ``nvidia/cuda:12.4.1-…``, ``python:3.11``."""
        name = self.repository
        if self.registry == DOCKER_HUB:
            name = name.removeprefix("library/")
        else:
            name = f"{self.registry}/{name}"
        if self.tag:
            name += f":{self.tag}"
        if self.digest:
            name += f"@{self.digest}"
        return name

    def with_digest(self, digest: Digest) -> ImageRef:
        return ImageRef(self.registry, self.repository, self.tag, digest)

    def __str__(self) -> str:
        name = f"{self.registry}/{self.repository}"
        if self.tag:
            name += f":{self.tag}"
        if self.digest:
            name += f"@{self.digest}"
        return name
