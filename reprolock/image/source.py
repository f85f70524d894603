"""The read-only image protocol every source implements, and what a read yields."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import IO, Protocol

from reprolock.errors import SourceError
from reprolock.model import Digest
from reprolock.model.oci import ImageConfig, Manifest, parse_config


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerRef:
    """One layer as its source describes it."""

    index: int
    digest: Digest | None  # of the stored blob (compressed); None where a source has no blob
    size: int | None  # stored size, when the source records it
    media_type: str = ""
    location: str = ""  # where the source keeps it (a member name, a blob path)


class Image(Protocol):
    """A built image: config, layers, and a way to stream each layer.

    ``description`` names the image in messages.  ``manifest`` and
    ``manifest_digest`` are None where the source keeps none (a docker
    archive has a config and layer tars only).
    """

    description: str

    def config_bytes(self) -> bytes: ...

    def config(self) -> ImageConfig: ...

    def manifest(self) -> Manifest | None: ...

    def manifest_digest(self) -> Digest | None: ...

    def layers(self) -> Sequence[LayerRef]: ...

    def open_layer(self, layer: LayerRef) -> AbstractContextManager[IO[bytes]]: ...


def config_of(data: bytes, description: str) -> ImageConfig:
    """Parse a config blob; `SourceError` naming the image when it is malformed."""
    try:
        return parse_config(data)
    except ValueError as exc:
        raise SourceError(
            f"{description}: bad image config: {exc}.", hint="The image is damaged; rebuild it."
        ) from None
