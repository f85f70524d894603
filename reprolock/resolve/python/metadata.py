"""Core metadata (``METADATA``) → the dependency facts the resolver needs.

Two things make this cheap for large projects.  The header block is read by a small
parser that gives what the standard library's ``email`` parser (compat32 policy) gives
for the five fields used here, and hands anything unusual (non-ASCII values of those
fields, a misplaced line) to that parser.  And ``Requires-Dist`` lines stay text until
needed: a project may declare hundreds, most for extras no one asked for, and parsing
one costs more than reading the whole header block, so `applying` skips without parsing
the lines whose whole marker is ``extra == "<another extra>"``.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Mapping
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
    requires_lines: tuple[str, ...]  # the Requires-Dist values, as written
    requires_python: str | None
    provides_extra: frozenset[NormalizedName]

    @property
    def requires_dist(self) -> tuple[Requirement, ...]:
        """Every Requires-Dist line that is PEP 508, parsed (in order)."""
        return tuple(r for line in self.requires_lines if (r := requirement(line)) is not None)

    @property
    def invalid(self) -> tuple[str, ...]:
        """Requires-Dist lines that are not PEP 508."""
        return tuple(line for line in self.requires_lines if requirement(line) is None)


_PARSING = threading.Lock()


@functools.lru_cache(maxsize=1 << 16)
def requirement(line: str) -> Requirement | None:
    """``line`` parsed as PEP 508, or None when it is not (remembered: the same lines come
    back in the metadata of every release of a project).

    One at a time: packaging's marker parser uses ``ast``, whose constructor CPython 3.11
    does not make safe across threads ("AST constructor recursion depth mismatch",
    python/cpython#106905)."""
    with _PARSING:
        try:
            return Requirement(line)
        except InvalidRequirement:
            return None


# A requirement whose whole marker is `extra == "<name>"` (no URL, no second `;`): false
# without that extra, true with it, whatever precedes the marker.
_EXTRA_ONLY = re.compile(
    r"""^[^;@]*;\s*extra\s*==\s*(['"])([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\1\s*$"""
)


def applying(
    metadata: CoreMetadata, env: Mapping[str, str], extra: NormalizedName | None
) -> tuple[Requirement, ...]:
    """The requirements of ``metadata`` that apply in the marker environment ``env``:
    without ``extra``, those whose marker holds; with it, those whose marker holds with
    that extra only.  Lines are parsed only when they may apply."""
    base_env = {**env, "extra": ""}
    extra_env = {**env, "extra": extra or ""}
    out: list[Requirement] = []
    for line in metadata.requires_lines:
        only = _EXTRA_ONLY.match(line)
        if only is not None and (extra is None or canonicalize_name(only.group(2)) != extra):
            continue  # its marker is false here: no need to parse it
        found = requirement(line)
        if found is None:
            continue
        marker = found.marker
        if extra is None:
            if marker is None or marker.evaluate(base_env):
                out.append(found)
        elif marker is not None and marker.evaluate(extra_env) and not marker.evaluate(base_env):
            out.append(found)
    return tuple(out)


_WANTED = frozenset({"name", "version", "requires-dist", "requires-python", "provides-extra"})
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")
_HEADER = re.compile(r"[\x21-\x39\x3b-\x7e]+:")  # a name of printable ASCII but ":"
_NOT_ASCII = re.compile(r"[^\x00-\x7f]")


def _fields(text: str) -> dict[str, list[str]] | None:
    """The values of the wanted headers (lower-cased names), as ``email`` with the compat32
    policy gives them (folded lines kept, trailing line end cut); None when the header
    block has anything that parser treats specially, so that it is asked instead."""
    fields: dict[str, list[str]] = {}
    current: list[str] | None = None  # the lines of a wanted header being read
    seen_header = False

    def finish() -> bool:
        if current is None:
            return True
        name, value = current[0].split(":", 1)
        value = (value.lstrip(" \t") + "".join(current[1:])).rstrip("\r\n")
        if _NOT_ASCII.search(value):
            return False  # compat32 turns such a value into a Header object
        fields.setdefault(name.lower(), []).append(value)
        return True

    for match in _LINE.finditer(text):
        line = match.group()
        if line[0] in "\r\n":
            break  # the blank line that ends the headers
        if line[0] in " \t":
            if not seen_header:
                return None
            if current is not None:
                current.append(line)
            continue
        if line.startswith("From ") or not _HEADER.match(line):
            return None
        if not finish():
            return None
        seen_header = True
        name = line[: line.index(":")].lower()
        current = [line] if name in _WANTED else None
    if not finish():
        return None
    return fields


def _email_fields(data: bytes) -> dict[str, list[str]]:
    message = BytesParser(policy=compat32).parsebytes(data, headersonly=True)
    return {
        name: [str(v) for v in message.get_all(name) or ()]
        for name in _WANTED
        if message.get_all(name)
    }


def parse_metadata(data: bytes) -> CoreMetadata:
    """Parse an RFC 822 style METADATA file (any bytes: what is not metadata is empty)."""
    text = data.decode("ascii", "surrogateescape")  # as BytesParser reads bytes
    fields = _fields(text)
    if fields is None:
        fields = _email_fields(data)

    def first(name: str) -> str:
        values = fields.get(name)
        return values[0] if values else ""

    return CoreMetadata(
        name=canonicalize_name(first("name")),
        version=first("version"),
        requires_lines=tuple(fields.get("requires-dist", ())),
        requires_python=first("requires-python") or None,
        provides_extra=frozenset(canonicalize_name(e) for e in fields.get("provides-extra", ())),
    )


def check_identity(metadata: CoreMetadata, filename: str, source: str) -> CoreMetadata:
    """``metadata`` when its Name and Version are those of the wheel (or sdist) ``filename``;
    `SourceError` otherwise (an index serving one project's metadata for another's file)."""
    try:
        if filename.endswith(".whl"):
            name, version, _build, _tags = parse_wheel_filename(filename)
        else:  # an sdist: name-version.tar.gz (or .zip)
            stem = filename.removesuffix(".tar.gz").removesuffix(".zip")
            name_text, _, version_text = stem.rpartition("-")
            name, version = canonicalize_name(name_text), Version(version_text)
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
