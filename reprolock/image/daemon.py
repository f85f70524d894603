"""Images from a docker (or podman) daemon through its Engine API on a unix socket.

``GET /images/{name}/get`` streams a docker archive; it is spooled to a private
temporary file (a docker archive needs random access) and read from there.
"""

from __future__ import annotations

import http.client
import shutil
import socket
import tempfile
from pathlib import Path
from urllib.parse import quote

from reprolock.errors import SourceError
from reprolock.image.docker_archive import DockerArchive

DEFAULT_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock", "/run/podman/podman.sock")


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


class DaemonImage(DockerArchive):
    """A docker archive fetched from the daemon; the spool is removed by `close`."""

    def __init__(self, name: str, socket_path: str, *, timeout: float = 300.0) -> None:
        self.spool_dir = Path(tempfile.mkdtemp(prefix="reprolock-daemon-"))
        spool = self.spool_dir / "image.tar"
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
                    detail = response.read(2000).decode(errors="replace").strip()
                    raise SourceError(
                        f"docker:{name}: the daemon answered {response.status}: {detail}"
                    )
                with spool.open("wb") as out:
                    shutil.copyfileobj(response, out, 1 << 20)
            finally:
                connection.close()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise SourceError(
                f"docker:{name}: cannot talk to the daemon at {socket_path} ({exc}).",
                hint="Start dockerd (or podman system service), or set "
                "DOCKER_HOST=unix:///path/to/socket.",
            ) from None
        except SourceError:
            self.close()
            raise
        super().__init__(spool)
        self.description = f"docker:{name}"

    def close(self) -> None:
        if hasattr(self, "tar"):
            super().close()
        shutil.rmtree(self.spool_dir, ignore_errors=True)
