"""Core metadata (``METADATA``) → the dependency facts the resolver needs."""

from __future__ import annotations

from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import compat32

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from reprolock.errors import SourceError


@dataclass(frozen=True, slots=True, kw_only=True)
class CoreMetadata:
    name: NormalizedName
    version: str
    requires_dist: tuple[Requirement, ...]
    requires_python: str | None
    provides_extra: frozenset[NormalizedName]
    invalid: tuple[str, ...] = ()  # Requires-Dist lines that are not PEP 508


def parse_metadata(data: bytes) -> CoreMetadata:
    """Parse an RFC 822 style METADATA file (any bytes: what is not metadata is empty)."""
    message = BytesParser(policy=compat32).parsebytes(data, headersonly=True)
    requires: list[Requirement] = []
    invalid: list[str] = []
    for line in message.get_all("Requires-Dist") or ():
        try:
            requires.append(Requirement(str(line)))
        except InvalidRequirement:
            invalid.append(str(line))
    return CoreMetadata(
        name=canonicalize_name(str(message.get("Name", ""))),
        version=str(message.get("Version", "")),
        requires_dist=tuple(requires),
        requires_python=str(message["Requires-Python"]) if message["Requires-Python"] else None,
        provides_extra=frozenset(
            canonicalize_name(str(e)) for e in message.get_all("Provides-Extra") or ()
        ),
        invalid=tuple(invalid),
    )


def check_identity(metadata: CoreMetadata, filename: str, source: str) -> CoreMetadata:
    """``metadata`` when its Name and Version are those of the wheel ``filename``;
    `SourceError` otherwise (an index serving one project's metadata for another's file)."""
    try:
        name, version, _build, _tags = parse_wheel_filename(filename)
        same = metadata.name == name and Version(metadata.version) == version
    except (InvalidWheelFilename, InvalidVersion):
        same = False
    if not same:
        shown = f"{metadata.name[:80]} {metadata.version[:40]}".strip() or "no name or version"
        raise SourceError(
            f"the metadata served for {filename} describes {shown}, not that wheel ({source}).",
            hint="The index serves mismatched or tampered metadata; do not use it.",
        )
    return metadata
