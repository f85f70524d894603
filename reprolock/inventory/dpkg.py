"""dpkg's database: ``var/lib/dpkg/status`` and distroless ``var/lib/dpkg/status.d/*``."""

from __future__ import annotations

from reprolock.inventory.model import DebPackage
from reprolock.model.deb822 import stanzas

__all__ = ["parse_status", "stanzas"]


def parse_status(
    text: str,
    *,
    path: str,
    layer: int,
    distroless: bool = False,
) -> list[DebPackage]:
    """Installed packages; distroless status.d files have no Status field."""
    out = []
    for fields in stanzas(text):
        status = fields.get("Status", "install ok installed")
        if not distroless and status.split()[-1:] != ["installed"]:
            continue
        if "Package" not in fields or "Version" not in fields:
            continue
        source = fields.get("Source", "").split(" ")[0] or None
        out.append(
            DebPackage(
                name=fields["Package"],
                version=fields["Version"],
                architecture=fields.get("Architecture", ""),
                source=source,
                path=path,
                layer=layer,
            )
        )
    return out
