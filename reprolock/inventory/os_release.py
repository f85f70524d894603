"""``/etc/os-release`` (or ``/usr/lib/os-release``)."""

from __future__ import annotations

import shlex

from reprolock.inventory.model import OsInfo


def parse_os_release(text: str, *, path: str, layer: int) -> OsInfo | None:
    values: dict[str, str] = {}
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        try:
            parts = shlex.split(raw)
        except ValueError:
            parts = [raw.strip("\"'")]
        values[key.strip()] = parts[0] if parts else ""
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
