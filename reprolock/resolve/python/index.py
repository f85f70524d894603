"""What the resolver needs from a Python package index, and the file records it returns."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from packaging.utils import NormalizedName

from reprolock.resolve.python.target import PythonTarget


@dataclass(frozen=True, slots=True, kw_only=True)
class DistFile:
    """One distribution file listed on an index's project page."""

    filename: str
    url: str
    index: str  # the index URL (credentials removed) the file was listed on
    sha256: str | None
    requires_python: str | None = None
    yanked: str | None = None  # the reason ("" for none given) when yanked
    upload_time_text: str | None = None  # RFC 3339, as the index wrote it
    size: int | None = None
    metadata: bool | str = False  # PEP 658/714: True, or the metadata file's sha256

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")

    @property
    def upload_time(self) -> dt.datetime | None:
        """The upload time, parsed on use (most locks never ask); one without a zone is UTC,
        as PEP 700 writes them (so it compares with exclude-newer)."""
        if not self.upload_time_text:
            return None
        try:
            found = dt.datetime.fromisoformat(self.upload_time_text.replace("Z", "+00:00"))
        except ValueError:
            return None
        return found if found.tzinfo is not None else found.replace(tzinfo=dt.UTC)


class PythonIndex(Protocol):
    """A source of project pages and core metadata (PEP 503/691/658).

    ``project_files`` returns the files the index lists for a project (empty
    when the index does not have the project), possibly only the sdists and the wheels
    some target can use (then ``other_files`` names the other wheels);
    ``metadata`` returns the core metadata (``METADATA``) of a wheel.  Both raise
    `SourceError` on trouble.
    """

    def project_files(self, name: NormalizedName) -> Sequence[DistFile]: ...

    def metadata(self, file: DistFile) -> bytes: ...

    def other_files(self, name: NormalizedName) -> Sequence[str]:
        """Filenames of listed files kept by name only (wheels no target can use)."""
        ...


class SdistMetadata(Protocol):
    """The core metadata of a source distribution, for one target.

    ``metadata`` returns the ``METADATA`` the sdist's build backend prepares (or the
    index's PEP 658 file for it), and remembers how it is built for ``target`` (the
    build environment the lock records); it raises `SourceError` when the sdist cannot be
    read or built.  Building runs the sdist's code: only in a subprocess, never here.
    """

    def metadata(self, file: DistFile, target: PythonTarget) -> bytes: ...
