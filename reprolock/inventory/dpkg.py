"""dpkg's database: ``var/lib/dpkg/status`` and distroless ``var/lib/dpkg/status.d/*``."""

from __future__ import annotations

from reprolock.inventory.model import DebPackage
from reprolock.inventory.text import printable
from reprolock.model.deb822 import stanzas

__all__ = ["parse_status", "stanzas"]


def parse_status(
    text: str,
    *,
    path: str,
    layer: int,
    distroless: bool = False,
) -> list[DebPackage]:
    """Installed packages; distroless status.d files have no Status field.

    Never raises: a stanza without a package name or version is not a package, and
    values are made printable (`printable`)."""
    out = []
    for fields in stanzas(text):
        status = fields.get("Status", "install ok installed")
        if not distroless and status.split()[-1:] != ["installed"]:
            continue
        name, version = fields.get("Package", ""), fields.get("Version", "")
        if not name or not version:
            continue
        source = fields.get("Source", "").split(" ")[0] or None
        out.append(
            DebPackage(
                name=printable(name),
                version=printable(version),
                architecture=printable(fields.get("Architecture", "")),
                source=None if source is None else printable(source),
                path=path,
                layer=layer,
            )
        )
    return out
