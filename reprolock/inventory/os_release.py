"""``/etc/os-release`` (or ``/usr/lib/os-release``)."""

from __future__ import annotations

import shlex

from reprolock.inventory.model import OsInfo
from reprolock.inventory.text import printable

MAX_TEXT = 64 * 1024  # a real os-release is well under 1 KiB; shlex is slow on megabytes


def parse_os_release(text: str, *, path: str, layer: int) -> OsInfo | None:
    """The release's id, version and names; None without an ``ID`` (never raises)."""
    values: dict[str, str] = {}
    for raw_line in text[:MAX_TEXT].splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        try:
            parts = shlex.split(raw)
        except ValueError:
            parts = [raw.strip("\"'")]
        values[key.strip()] = printable(parts[0]) if parts else ""
    if "ID" not in values:
        return None
    return OsInfo(
        id=values["ID"],
        version_id=values.get("VERSION_ID"),
        pretty_name=values.get("PRETTY_NAME"),
        codename=values.get("VERSION_CODENAME") or values.get("UBUNTU_CODENAME"),
        id_like=tuple(values.get("ID_LIKE", "").split()),
        path=path,
        layer=layer,
    )
