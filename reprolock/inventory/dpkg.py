"""dpkg's database: ``var/lib/dpkg/status`` and distroless ``var/lib/dpkg/status.d/*``."""

from __future__ import annotations

from collections.abc import Iterator

from reprolock.inventory.model import DebPackage


def stanzas(text: str) -> Iterator[dict[str, str]]:
    """RFC 822 style paragraphs; continuation lines are folded into their field."""
    fields: dict[str, str] = {}
    last: str | None = None
    for line in text.splitlines():
        if not line.strip():
            if fields:
                yield fields
            fields, last = {}, None
        elif line[0] in " \t" and last is not None:
            fields[last] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            last = key.strip()
            fields[last] = value.strip()
    if fields:
        yield fields


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
