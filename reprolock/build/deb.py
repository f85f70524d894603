"""A ``.deb`` read within bounds: its ``ar`` members, the control archive whole, the data
archive streamed.

A ``.deb`` is an ``ar`` archive of ``debian-binary`` (``2.0``), ``control.tar[.gz|.xz|
.zst]`` and ``data.tar[.gz|.xz|.zst|.bz2]``, in that order (members starting with ``_``
may follow and are ignored, as dpkg does).  Every size is checked against the file's,
the control archive is read whole within ``limits.catalog_file_bytes``, and the data
archive is decompressed within the layer caps; tar headers are read with
`reprolock.image.tarheaders` (bounded extended headers, no sparse files).
"""

from __future__ import annotations

import io
import os
import posixpath
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, cast

from reprolock import limits
from reprolock.bounded import Compression, Decompressor, decompress_capped, read_capped
from reprolock.errors import SourceError
from reprolock.image.files import window
from reprolock.image.tarheaders import members, open_tar

_MAGIC = b"!<arch>\n"
_HINT = "The .deb is damaged or hostile; do not use it."
_SUFFIXES: dict[str, Compression] = {
    "": "plain",
    ".gz": "gzip",
    ".xz": "xz",
    ".zst": "zstd",
    ".bz2": "bzip2",
}
# The control archive's files dpkg keeps in /var/lib/dpkg/info (all but "control").
CONTROL_FILES = (
    "conffiles",
    "config",
    "md5sums",
    "postinst",
    "postrm",
    "preinst",
    "prerm",
    "shlibs",
    "symbols",
    "templates",
    "triggers",
)
SCRIPTS = frozenset({"config", "postinst", "postrm", "preinst", "prerm"})


@dataclass(frozen=True, slots=True)
class _Member:
    name: str
    offset: int
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ControlField:
    """One field of the control file as written (continuation lines kept verbatim)."""

    name: str
    value: str  # the first line's value, then "\n" and each continuation line as written


@dataclass(frozen=True, slots=True, kw_only=True)
class Control:
    """The control archive: the control file's fields, and the other files."""

    fields: tuple[ControlField, ...]
    files: dict[str, bytes]  # name → bytes, for the names in CONTROL_FILES

    def get(self, name: str) -> str:
        lowered = name.lower()
        field = next((f for f in self.fields if f.name.lower() == lowered), None)
        return "" if field is None else field.value.split("\n", 1)[0].strip()


class DebFile:
    """An open ``.deb`` (a file whose sha256 the caller checked)."""

    def __init__(self, file: IO[bytes], size: int, what: str) -> None:
        self.file = file
        self.size = size
        self.what = what
        self.control_member, self.data_member = self._members()

    def _members(self) -> tuple[_Member, _Member]:
        head = os_pread(self.file, len(_MAGIC), 0)
        if head != _MAGIC:
            raise SourceError(f"{self.what}: is not a Debian package (no ar header).", hint=_HINT)
        found: list[_Member] = []
        offset = len(_MAGIC)
        while offset < self.size and len(found) < 16:
            header = os_pread(self.file, 60, offset)
            if len(header) < 60 or header[58:60] != b"`\n":
                raise SourceError(f"{self.what}: a malformed ar member header.", hint=_HINT)
            name = header[:16].decode("ascii", "replace").strip().rstrip("/")
            size_text = header[48:58].decode("ascii", "replace").strip()
            if not size_text.isdigit():
                raise SourceError(f"{self.what}: an ar member without a size.", hint=_HINT)
            size = int(size_text)
            start = offset + 60
            if start + size > self.size:
                raise SourceError(f"{self.what}: the ar member {name} is truncated.", hint=_HINT)
            found.append(_Member(name, start, size))
            offset = start + size + (size & 1)
        names = [m.name for m in found]
        if len(found) < 3 or names[0] != "debian-binary":
            raise SourceError(f"{self.what}: not a Debian package ({names[:3]}).", hint=_HINT)
        version = os_pread(self.file, min(found[0].size, 16), found[0].offset)
        if not version.startswith(b"2."):
            raise SourceError(
                f"{self.what}: package format {version[:8]!r} is not 2.x.", hint=_HINT
            )
        control, data = found[1], found[2]
        if not control.name.startswith("control.tar") or not data.name.startswith("data.tar"):
            raise SourceError(
                f"{self.what}: the members are {names[:3]}, not debian-binary, "
                "control.tar and data.tar.",
                hint=_HINT,
            )
        for member in (control, data):
            if member.name.partition(".tar")[2] not in _SUFFIXES:
                raise SourceError(
                    f"{self.what}: {member.name} is compressed in a way dpkg does not know.",
                    hint=_HINT,
                )
        return control, data

    def _stream(self, member: _Member) -> IO[bytes]:
        return window(self.file.fileno(), member.offset, member.size, f"{self.what}: {member.name}")

    def control(self) -> Control:
        member = self.control_member
        kind = _SUFFIXES[member.name.partition(".tar")[2]]
        caps = limits.current()
        what = f"{self.what}: {member.name}"
        with self._stream(member) as raw:
            stored = read_capped(raw, caps.catalog_file_bytes, what, "catalog_file_bytes")
        data = (
            stored
            if kind == "plain"
            else decompress_capped(
                stored,
                kind,
                what=what,
                max_output=caps.catalog_file_bytes,
                limit_name="catalog_file_bytes",
                floor=caps.catalog_file_bytes,
            )
        )
        tar = open_tar(io.BytesIO(data), what, hint=_HINT)
        files: dict[str, bytes] = {}
        text: bytes | None = None
        for info in members(tar, what, hint=_HINT):
            name = posixpath.normpath(info.name).lstrip("/")
            if not info.isreg() or "/" in name:
                continue
            handle = tar.extractfile(info)
            assert handle is not None
            body = handle.read()
            if name == "control":
                text = body
            elif name in CONTROL_FILES:
                files[name] = body
        if text is None:
            raise SourceError(f"{self.what}: the control archive has no control file.", hint=_HINT)
        try:
            decoded = text.decode("utf-8")
        except UnicodeDecodeError:
            decoded = text.decode("latin-1")
        return Control(fields=parse_control(decoded, self.what), files=files)

    def data(self) -> tuple[tarfile.TarFile, Decompressor]:
        """The data archive as a stream of members (read them with `entries`)."""
        member = self.data_member
        kind = _SUFFIXES[member.name.partition(".tar")[2]]
        what = f"{self.what}: {member.name}"
        source = Decompressor(
            self._stream(member),
            kind,
            what=what,
            max_output=limits.current().layer_bytes,
            limit_name="layer_bytes",
        )
        return open_tar(cast(IO[bytes], source), what, hint=_HINT), source


def entries(tar: tarfile.TarFile, what: str) -> Iterator[tarfile.TarInfo]:
    """The data archive's members, bounded (`reprolock.image.tarheaders.members`)."""
    yield from members(tar, what, hint=_HINT)


def os_pread(file: IO[bytes], size: int, offset: int) -> bytes:
    return os.pread(file.fileno(), size, offset)


def parse_control(text: str, what: str) -> tuple[ControlField, ...]:
    """The fields of a control file in order, values as written (the first paragraph)."""
    fields: list[ControlField] = []
    name: str | None = None
    lines: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            if fields or name is not None:
                break
            continue
        if line.startswith("#"):
            continue
        if line[0] in " \t":
            if name is None:
                raise SourceError(f"{what}: the control file starts with a continuation line.")
            lines.append(line)
            continue
        if name is not None:
            fields.append(ControlField(name=name, value="\n".join(lines)))
        key, colon, value = line.partition(":")
        if not colon or not key.strip() or " " in key.strip():
            raise SourceError(f"{what}: a malformed control line {line[:60]!r}.", hint=_HINT)
        name, lines = key.strip(), [value.strip()]
    if name is not None:
        fields.append(ControlField(name=name, value="\n".join(lines)))
    return tuple(fields)
