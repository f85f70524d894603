"""Core metadata (``METADATA``) → the dependency facts the resolver needs."""

from __future__ import annotations

from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import compat32

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name


@dataclass(frozen=True, slots=True, kw_only=True)
class CoreMetadata:
    name: NormalizedName
    version: str
    requires_dist: tuple[Requirement, ...]
    requires_python: str | None
    provides_extra: frozenset[NormalizedName]
    invalid: tuple[str, ...] = ()  # Requires-Dist lines that are not PEP 508


def parse_metadata(data: bytes) -> CoreMetadata:
    """Parse an RFC 822 style METADATA file."""
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
