"""python-build-standalone releases: the ``install_only`` builds a release offers, read from
its ``SHA256SUMS`` (one ``<sha256>  <asset>`` line per asset).

Pure: the text of the checksums file in, offers out.  Every line is checked where it enters:
a name that is not this release's asset for the platform, or a digest that is not 64
lowercase hex digits, is not an offer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from reprolock.compat.python_images import StandaloneCatalog
from reprolock.model import Platform, grammar

MAX_LINES = 20_000  # a release lists a few thousand assets


@dataclass(frozen=True, slots=True, kw_only=True)
class StandaloneBuild:
    """One ``install_only`` tarball of a release, for one platform."""

    version: str  # "3.11.10"
    asset: str  # the file name
    url: str
    sha256: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StandaloneRelease:
    """What a release offers for a platform (or why nothing)."""

    release: str
    checksums_url: str
    triple: str | None
    builds: tuple[StandaloneBuild, ...] = ()

    def newest(self, feature: str, exact: str | None = None) -> StandaloneBuild | None:
        """The build of ``exact`` (``3.11.2``), else the newest final release of ``feature``."""
        found = [b for b in self.builds if b.version.rsplit(".", 1)[0] == feature]
        if exact is not None:
            return next((b for b in found if b.version == exact), None)
        return max(found, key=lambda b: _key(b.version), default=None)

    def versions(self) -> list[str]:
        return sorted({b.version for b in self.builds}, key=_key)


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def release_folder(catalog: StandaloneCatalog, release: str, url: str | None) -> str:
    """``<url>/<release>``: where the release's assets and checksums are."""
    return f"{(url or catalog.url).rstrip('/')}/{release}"


def parse_checksums(
    text: str,
    *,
    catalog: StandaloneCatalog,
    release: str,
    platform: Platform,
    url: str | None = None,
) -> StandaloneRelease:
    """The ``install_only`` builds ``release`` offers for ``platform``."""
    folder = release_folder(catalog, release, url)
    checksums_url = f"{folder}/{catalog.checksums}"
    triple = catalog.triples.get(platform)
    if triple is None:
        return StandaloneRelease(release=release, checksums_url=checksums_url, triple=None)
    pattern = re.compile(
        re.escape(catalog.asset)
        .replace(re.escape("{version}"), r"(?P<version>[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3})")
        .replace(re.escape("{release}"), re.escape(release))
        .replace(re.escape("{triple}"), re.escape(triple)),
        re.ASCII,
    )
    builds: dict[str, StandaloneBuild] = {}
    for line in _lines(text):
        digest, _, name = line.partition(" ")
        name = name.strip().lstrip("*")
        found = pattern.fullmatch(name)
        if found is None or name in builds:
            continue
        try:
            sha = grammar.sha256_hex(digest)
            asset_url = grammar.http_url(f"{folder}/{name.replace('+', '%2B')}")
        except ValueError:
            continue
        builds[name] = StandaloneBuild(
            version=found.group("version"), asset=name, url=asset_url, sha256=sha
        )
    return StandaloneRelease(
        release=release,
        checksums_url=checksums_url,
        triple=triple,
        builds=tuple(sorted(builds.values(), key=lambda b: _key(b.version))),
    )


def _lines(text: str) -> Iterable[str]:
    for i, line in enumerate(text.splitlines()):
        if i >= MAX_LINES:
            return
        yield line.strip()
