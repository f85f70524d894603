"""Tar headers written byte for byte the same on every machine and Python release.

`tarfile`'s output changes between Python releases (pax records, padding), so archives
whose digest must not move are written with these: a ustar header block, preceded by a
pax extended header (records sorted) only when a name, a link target or a number does not
fit ustar; no user or group names, no device numbers.  An archive ends with two zero
blocks and no padding to a record size.
"""

from __future__ import annotations

from typing import Literal

BLOCK = 512
END = b"\x00" * (2 * BLOCK)
Kind = Literal["file", "dir", "symlink", "hardlink"]
_TYPES: dict[str, bytes] = {"file": b"0", "dir": b"5", "symlink": b"2", "hardlink": b"1"}
_MAX = {8: 0o7777777, 12: 0o77777777777}  # what an octal field of that width holds


def _octal(value: int, width: int) -> bytes:
    return b"%0*o\x00" % (width - 1, value)


def _pax(records: dict[str, str]) -> bytes:
    """A pax extended header's body: ``"%d %s=%s\\n"`` records, sorted by key."""
    out = b""
    for key, value in sorted(records.items()):
        body = f" {key}={value}\n".encode("utf-8", "surrogateescape")
        length = len(body) + 1
        while len(str(length)) + len(body) != length:
            length = len(str(length)) + len(body)
        out += str(length).encode() + body
    return out


def _block(
    name: bytes, *, kind: bytes, mode: int, uid: int, gid: int, size: int, mtime: int, link: bytes
) -> bytes:
    block = bytearray(BLOCK)
    block[0:100] = name.ljust(100, b"\x00")
    block[100:108] = _octal(mode, 8)
    block[108:116] = _octal(uid, 8)
    block[116:124] = _octal(gid, 8)
    block[124:136] = _octal(size, 12)
    block[136:148] = _octal(mtime, 12)
    block[148:156] = b" " * 8
    block[156:157] = kind
    block[157:257] = link.ljust(100, b"\x00")
    block[257:265] = b"ustar\x0000"
    block[329:337] = _octal(0, 8)
    block[337:345] = _octal(0, 8)
    block[148:156] = b"%06o\x00 " % sum(block)
    return bytes(block)


def header(
    path: str,
    kind: Kind,
    *,
    mode: int,
    uid: int = 0,
    gid: int = 0,
    size: int = 0,
    mtime: int = 0,
    link: str = "",
) -> bytes:
    """The header blocks of one member (``path`` relative; a folder gets its ``/``)."""
    if kind == "dir" and not path.endswith("/"):
        path += "/"
    name = path.encode("utf-8", "surrogateescape")
    target = link.encode("utf-8", "surrogateescape")
    pax: dict[str, str] = {}
    if len(name) > 100 or not name.isascii():
        pax["path"] = path
        name = name[:100].decode("ascii", "replace").encode("ascii", "replace")
    if len(target) > 100 or not target.isascii():
        pax["linkpath"] = link
        target = target[:100].decode("ascii", "replace").encode("ascii", "replace")
    numbers = {"size": (size, 12), "uid": (uid, 8), "gid": (gid, 8), "mtime": (mtime, 12)}
    fitted: dict[str, int] = {}
    for key, (value, width) in numbers.items():
        fits = 0 <= value <= _MAX[width]
        if not fits:
            pax[key] = str(value)
        fitted[key] = value if fits else 0
    out = b""
    if pax:
        body = _pax(pax)
        out += _block(
            b"././@PaxHeader",
            kind=b"x",
            mode=0o644,
            uid=0,
            gid=0,
            size=len(body),
            mtime=0,
            link=b"",
        )
        out += body + padding(len(body))
    return out + _block(
        name,
        kind=_TYPES[kind],
        mode=mode & 0o7777,
        uid=fitted["uid"],
        gid=fitted["gid"],
        size=fitted["size"],
        mtime=fitted["mtime"],
        link=target,
    )


def padding(size: int) -> bytes:
    """The zeros after ``size`` bytes of content, up to a block."""
    return b"\x00" * (-size % BLOCK)
