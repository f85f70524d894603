"""Archive index files: ``Release`` (the signed table of contents) and ``Packages``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from reprolock.apt.debian import Group, parse_provides, parse_relations
from reprolock.model.deb822 import stanzas


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexFile:
    path: str  # relative to dists/<suite>/
    sha256: str
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Release:
    suite: str
    codename: str
    components: tuple[str, ...]
    architectures: tuple[str, ...]
    files: dict[str, IndexFile] = field(default_factory=dict)
    by_hash: bool = False
    valid_until: datetime | None = None
    not_automatic: bool = False
    but_automatic_upgrades: bool = False

    @property
    def priority(self) -> int:
        """apt's default pin priority for this archive (NotAutomatic: 1, with
        ButAutomaticUpgrades: 100, else 500)."""
        if self.not_automatic:
            return 100 if self.but_automatic_upgrades else 1
        return 500


_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SIZE = re.compile(r"^[0-9]{1,15}$")
# A path inside an archive: relative, no "..", no controls or spaces, a safe charset.
_ARCHIVE_PATH = re.compile(r"^(?!/)(?!.*(?:^|/)\.\.(?:/|$))[A-Za-z0-9._+~%:@=,/-]{1,1024}$")
_DEB_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]{0,253}$")
_DEB_VERSION = re.compile(r"^(?:[0-9]{1,10}:)?[0-9][A-Za-z0-9.+~:-]{0,254}$")
_DEB_ARCH = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


def archive_path(text: str) -> bool:
    """True for a path an archive may name (relative, inside the archive, safe in a URL)."""
    return bool(_ARCHIVE_PATH.match(text))


def parse_release(text: str) -> Release:
    """A Release file; index entries with a malformed hash, size or path are left out."""
    fields = next(stanzas(text), {})
    files: dict[str, IndexFile] = {}
    for line in fields.get("SHA256", "").splitlines():
        parts = line.split()
        if (
            len(parts) == 3
            and _SIZE.match(parts[1])
            and _SHA256.match(parts[0])
            and archive_path(parts[2])
        ):
            files[parts[2]] = IndexFile(path=parts[2], sha256=parts[0], size=int(parts[1]))
    valid_until = None
    if fields.get("Valid-Until"):
        try:
            valid_until = parsedate_to_datetime(fields["Valid-Until"]).astimezone(UTC)
        except (TypeError, ValueError):
            valid_until = None
    return Release(
        suite=fields.get("Suite", ""),
        codename=fields.get("Codename", ""),
        components=tuple(fields.get("Components", "").split()),
        architectures=tuple(fields.get("Architectures", "").split()),
        files=files,
        by_hash=fields.get("Acquire-By-Hash", "no").lower() == "yes",
        valid_until=valid_until,
        not_automatic=fields.get("NotAutomatic", "no").lower() == "yes",
        but_automatic_upgrades=fields.get("ButAutomaticUpgrades", "no").lower() == "yes",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """One package version an archive offers."""

    name: str
    version: str
    architecture: str
    depends: tuple[Group, ...] = ()
    pre_depends: tuple[Group, ...] = ()
    provides: tuple[tuple[str, str | None], ...] = ()
    conflicts: tuple[Group, ...] = ()
    breaks: tuple[Group, ...] = ()
    multi_arch: str = "no"
    priority: str = "optional"
    filename: str = ""
    sha256: str = ""
    size: int = 0
    archive: str = ""  # the archive root URL the file lives under
    suite: str = ""
    pin: int = 500  # apt's pin priority of the archive it came from

    @property
    def url(self) -> str:
        return f"{self.archive}/{self.filename}"


def _candidate(
    f: dict[str, str],
    arch: str,
    *,
    filename: str = "",
    sha256: str = "",
    size: int = 0,
    archive: str = "",
    suite: str = "",
    pin: int = 500,
) -> Candidate:
    """One stanza of a Packages index or a dpkg status file (which has no file fields)."""
    return Candidate(
        name=f["Package"],
        version=f["Version"],
        architecture=f.get("Architecture", arch),
        depends=parse_relations(f.get("Depends", ""), arch),
        pre_depends=parse_relations(f.get("Pre-Depends", ""), arch),
        provides=parse_provides(f.get("Provides", ""), arch),
        conflicts=parse_relations(f.get("Conflicts", ""), arch),
        breaks=parse_relations(f.get("Breaks", ""), arch),
        multi_arch=f.get("Multi-Arch", "no"),
        priority=f.get("Priority", "optional"),
        filename=filename,
        sha256=sha256,
        size=size,
        archive=archive,
        suite=suite,
        pin=pin,
    )


def parse_packages(
    text: str, *, arch: str, archive: str, suite: str, pin: int = 500
) -> list[Candidate]:
    """The Packages index of one component: the stanzas for ``arch`` and ``all``."""
    out = []
    for f in stanzas(text):
        if f.get("Architecture") not in (arch, "all") or not _well_formed(f):
            continue
        filename, sha256, size = f.get("Filename", ""), f.get("SHA256", ""), f.get("Size", "")
        if not (archive_path(filename) and _SHA256.match(sha256) and _SIZE.match(size)):
            continue  # not installable as locked: a file reprolock cannot name and check
        out.append(
            _candidate(
                f,
                arch,
                filename=filename,
                sha256=sha256,
                size=int(size),
                archive=archive,
                suite=suite,
                pin=pin,
            )
        )
    return out


def parse_status(text: str, *, arch: str) -> list[Candidate]:
    """The installed packages of a dpkg status file, as candidates (no file)."""
    return [
        _candidate(f, arch)
        for f in stanzas(text)
        if f.get("Status", "").split()[-1:] == ["installed"] and _well_formed(f)
    ]


def _well_formed(f: dict[str, str]) -> bool:
    """A stanza whose name, version and architecture follow Debian policy."""
    return (
        bool(_DEB_NAME.match(f.get("Package", "")))
        and bool(_DEB_VERSION.match(f.get("Version", "")))
        and bool(_DEB_ARCH.match(f.get("Architecture", "all")))
    )
