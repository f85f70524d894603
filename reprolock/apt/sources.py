"""apt sources: ``sources.list`` one-line entries and deb822 ``*.sources`` files, and how a
snapshot or a mirror rewrites them."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from reprolock.errors import InputError
from reprolock.model.deb822 import stanzas


@dataclass(frozen=True, slots=True, kw_only=True)
class AptSource:
    uri: str  # the archive root, no trailing slash
    suite: str  # "bookworm", "bookworm-updates", or a flat-repo path ending in "/"
    components: tuple[str, ...]
    signed_by: str | None = None  # a keyring path inside the image, or inline key text
    file: str = ""  # where it was declared
    trusted: bool = False  # [trusted=yes]

    @property
    def flat(self) -> bool:
        return self.suite.endswith("/")

    def describe(self) -> str:
        return f"{self.uri} {self.suite} {' '.join(self.components)}".strip()


def parse_one_line(text: str, file: str) -> list[AptSource]:
    """``deb [signed-by=/k.gpg arch=amd64] http://deb.debian.org/debian bookworm main``."""
    out = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb ") and not line.startswith("deb\t"):
            continue
        rest = line[3:].strip()
        options: dict[str, str] = {}
        if rest.startswith("["):
            inside, _, rest = rest[1:].partition("]")
            for option in inside.split():
                key, _, value = option.partition("=")
                options[key] = value
        parts = rest.split()
        if len(parts) < 2:
            continue
        out.append(
            AptSource(
                uri=parts[0].rstrip("/"),
                suite=parts[1],
                components=tuple(parts[2:]),
                signed_by=options.get("signed-by"),
                file=file,
                trusted=options.get("trusted") == "yes",
            )
        )
    return out


def parse_deb822(text: str, file: str) -> list[AptSource]:
    """``Types: deb`` / ``URIs:`` / ``Suites:`` / ``Components:`` / ``Signed-By:`` stanzas."""
    out = []
    for fields in stanzas(text):
        if "deb" not in fields.get("Types", "").split() or fields.get("Enabled", "yes") == "no":
            continue
        for uri in fields.get("URIs", "").split():
            for suite in fields.get("Suites", "").split():
                out.append(
                    AptSource(
                        uri=uri.rstrip("/"),
                        suite=suite,
                        components=tuple(fields.get("Components", "").split()),
                        signed_by=fields.get("Signed-By") or None,
                        file=file,
                        trusted=fields.get("Trusted", "no") == "yes",
                    )
                )
    return out


def parse_sources(files: dict[str, str]) -> list[AptSource]:
    """Every source declared in ``files`` (path → text), in apt's reading order."""
    out: list[AptSource] = []
    for path in sorted(files, key=lambda p: (p != "etc/apt/sources.list", p)):
        text = files[path]
        if path.endswith(".sources"):
            out.extend(parse_deb822(text, path))
        elif path.endswith(".list"):
            out.extend(parse_one_line(text, path))
    return out


# Archive roots that have a dated snapshot service, and its URL for a snapshot id.
_SNAPSHOTS = [
    (re.compile(r"^https?://(deb|ftp\.[a-z]+|httpredir)\.debian\.org/debian$"), "debian"),
    (re.compile(r"^https?://(deb|security)\.debian\.org/debian-security$"), "debian-security"),
    (re.compile(r"^https?://security\.debian\.org$"), "debian-security"),
    (re.compile(r"^https?://([a-z]+\.)?(archive|security)\.ubuntu\.com/ubuntu$"), "ubuntu"),
    (re.compile(r"^https?://ports\.ubuntu\.com/ubuntu-ports$"), "ubuntu-ports"),
]


def snapshot_uri(uri: str, snapshot: str) -> str | None:
    """The snapshot.debian.org / snapshot.ubuntu.com URL of ``uri`` at ``snapshot``."""
    for pattern, archive in _SNAPSHOTS:
        if pattern.match(uri):
            if archive.startswith("ubuntu"):
                return f"https://snapshot.ubuntu.com/{archive}/{snapshot}"
            return f"https://snapshot.debian.org/archive/{archive}/{snapshot}"
    return None


def rewrite(
    sources: list[AptSource], *, snapshot: str | None, mirror: str | None
) -> tuple[list[AptSource], list[str]]:
    """Point the distribution's sources (Debian/Ubuntu archives, security included) at
    ``mirror`` — which then serves every suite — or at the dated ``snapshot``; third-party
    sources (e.g. NVIDIA's CUDA repository) are left as they are, with a note."""
    notes = []
    out = []
    for source in sources:
        if mirror is not None and snapshot_uri(source.uri, "x") is not None:
            target = mirror.rstrip("/")
            out.append(replace(source, uri=target))
            continue
        if snapshot is not None:
            moved = snapshot_uri(source.uri, snapshot)
            if moved is None:
                notes.append(
                    f"{source.describe()} ({source.file}) has no snapshot service; it is "
                    "used as it is (its packages are pinned by sha256 all the same)"
                )
                out.append(source)
            else:
                out.append(replace(source, uri=moved))
            continue
        out.append(source)
    if (
        snapshot is not None
        and mirror is None
        and not any(s.uri.startswith("https://snapshot.") for s in out)
    ):
        raise InputError(
            f"[apt] snapshot {snapshot}: none of the base image's sources is a Debian or "
            "Ubuntu archive with a snapshot service.",
            hint="Give [apt] mirror for the archive, or drop snapshot.",
        )
    return out, notes
