"""Where a CPython can come from besides the base image (``matrices/python.toml``): the
official ``python`` images and python-build-standalone's relocatable builds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reprolock.model import Platform


@dataclass(frozen=True, slots=True, kw_only=True)
class PythonSuite:
    """One Debian suite the official ``python`` images are built on."""

    suite: str  # "bookworm"
    os: str  # "debian12", as [base] os names it
    glibc: str
    python: tuple[str, ...]  # feature releases with a slim image on this suite
    platforms: tuple[Platform, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class PythonImages:
    repository: str  # "python" (docker.io/library/python)
    tag: str  # "{python}-slim-{suite}"
    suites: tuple[PythonSuite, ...]  # newest first

    def suite(self, os: str | None) -> PythonSuite | None:
        """The suite ``os`` names (``debian12`` or ``bookworm``); the newest without one."""
        if os is None:
            return self.suites[0] if self.suites else None
        return next((s for s in self.suites if os in (s.os, s.suite)), None)

    def tag_for(self, python: str, suite: PythonSuite) -> str:
        return self.tag.format(python=python, suite=suite.suite)


@dataclass(frozen=True, slots=True, kw_only=True)
class StandaloneCatalog:
    """python-build-standalone releases: where they are and how their assets are named."""

    url: str  # the folder of releases: {url}/{release}/{asset}
    checksums: str  # "SHA256SUMS"
    asset: str  # "cpython-{version}+{release}-{triple}-install_only.tar.gz"
    folder: str  # the top folder of an install_only tarball: "python"
    triples: Mapping[Platform, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class PythonCatalog:
    images: PythonImages
    standalone: StandaloneCatalog

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PythonCatalog:
        images = data["images"]
        standalone = data["standalone"]
        return cls(
            images=PythonImages(
                repository=images["repository"],
                tag=images["tag"],
                suites=tuple(
                    PythonSuite(
                        suite=s["suite"],
                        os=s["os"],
                        glibc=s["glibc"],
                        python=tuple(s["python"]),
                        platforms=tuple(Platform.parse(p) for p in s["platforms"]),
                    )
                    for s in images.get("suite", ())
                ),
            ),
            standalone=StandaloneCatalog(
                url=standalone["url"].rstrip("/"),
                checksums=standalone["checksums"],
                asset=standalone["asset"],
                folder=standalone["folder"],
                triples={Platform.parse(k): v for k, v in standalone["triples"].items()},
            ),
        )
