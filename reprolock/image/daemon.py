"""Images from a docker (or podman) daemon through its Engine API on a unix socket.

``GET /images/{name}/get`` streams a docker archive; it is spooled to a private
temporary file without a name (a docker archive needs random access) and read from there.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
from collections.abc import Callable
from pathlib import Path
from typing import IO
from urllib.parse import quote

from reprolock import limits
from reprolock.bounded import STEP
from reprolock.errors import SourceError
from reprolock.image.docker_archive import DockerArchive, TarMembers
from reprolock.image.files import spool

DEFAULT_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock", "/run/podman/podman.sock")
DETAIL_BYTES = 2000  # of a daemon's error answer read, of which DETAIL_SHOWN characters
DETAIL_SHOWN = 300  # are shown in the message


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


def socket_from_host(docker_host: str | None) -> str | None:
    """The unix socket named by ``DOCKER_HOST`` (``unix:///path``), or a default one."""
    if docker_host:
        if not docker_host.startswith("unix://"):
            raise SourceError(
                f'DOCKER_HOST="{docker_host}" is not a unix socket; reprolock '
                "talks to local daemons only.",
                hint="Use docker save and docker-archive:PATH, or registry:REF.",
            )
        return docker_host.removeprefix("unix://")
    return next((s for s in DEFAULT_SOCKETS if Path(s).exists()), None)


def open_daemon_image(
    name: str,
    socket_path: str,
    *,
    timeout: float = 300.0,
    progress: Callable[[int], None] | None = None,
) -> DockerArchive:
    """The daemon's image ``name`` as a docker archive spooled to a nameless temporary
    file: no failure (nor a killed process) leaves the spool behind. ``progress`` is told
    the size of each piece spooled."""
    description = f"docker:{name}"
    out = spool()
    try:
        _download(name, socket_path, timeout, out, progress or _ignore)
        out.seek(0)
    except BaseException:
        out.close()
        raise
    return DockerArchive(TarMembers(out, description), description=description)


def _ignore(_size: int) -> None:
    pass


def _download(
    name: str, socket_path: str, timeout: float, out: IO[bytes], progress: Callable[[int], None]
) -> None:
    cap = limits.current().layer_bytes
    try:
        connection = _UnixConnection(socket_path, timeout)
        try:
            connection.request("GET", f"/images/{quote(name, safe='')}/get")
            response = connection.getresponse()
            if response.status == 404:
                raise SourceError(
                    f"docker:{name}: the daemon has no such image.",
                    hint="Build or pull it first (docker images lists them).",
                )
            if response.status != 200:
                raise SourceError(
                    f"docker:{name}: the daemon answered {response.status}: "
                    f"{_detail(response, connection)}"
                )
            total = 0
            while chunk := response.read(STEP):
                total += len(chunk)
                if total > cap:
                    raise limits.exceeded(
                        f"docker:{name}: the image from the daemon", "layer_bytes"
                    )
                out.write(chunk)
                progress(len(chunk))
            if response.length:  # the connection closed before the announced length
                raise http.client.IncompleteRead(b"", response.length)
            out.flush()
        finally:
            connection.close()
    except (OSError, http.client.HTTPException) as exc:
        raise SourceError(
            f"docker:{name}: reading the image from the daemon at {socket_path} failed "
            f"({_describe(exc)}).",
            hint="Start dockerd (or podman system service), or set "
            "DOCKER_HOST=unix:///path/to/socket; if the temporary folder (TMPDIR) is full, "
            "free space there.",
        ) from None


def _detail(response: http.client.HTTPResponse, connection: _UnixConnection) -> str:
    """The start of an error body, as one printable line (read with a short patience)."""
    if connection.sock is not None:
        with contextlib.suppress(OSError):
            connection.sock.settimeout(limits.current().request_seconds)
    try:
        data = response.read(DETAIL_BYTES)
    except (OSError, http.client.HTTPException):
        return "(no detail)"
    text = " ".join(
        "".join(c if c.isprintable() else " " for c in data.decode("utf-8", errors="replace"))
        .strip()
        .split()
    )
    if len(text) > DETAIL_SHOWN:
        text = text[:DETAIL_SHOWN] + "…"
    return text or "(no detail)"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, http.client.IncompleteRead):
        return "the stream ended early"
    return str(exc) or type(exc).__name__
