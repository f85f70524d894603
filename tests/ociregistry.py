"""A real OCI registry for tests (Debian's docker-registry), images pushed over its API,
and a loopback front that adds a bearer-token flow or misbehaves on purpose."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import socket
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from tests import realparts

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Link:
    """A symbolic link in a layer."""

    target: str


@dataclass(frozen=True)
class Hard:
    """A hard link to an earlier member of the same layer."""

    source: str


@dataclass(frozen=True)
class Dir:
    """An explicit folder entry."""


LayerFiles = dict[str, "bytes | Link | Hard | Dir"]


def layer_tar(files: Mapping[str, bytes | Link | Hard | Dir]) -> bytes:
    """An uncompressed layer tar, members in the order given (folders first if named)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, value in files.items():
            info = tarfile.TarInfo(name)
            info.mtime = 0
            if isinstance(value, Link):
                info.type, info.linkname = tarfile.SYMTYPE, value.target
                tar.addfile(info)
            elif isinstance(value, Hard):
                info.type, info.linkname = tarfile.LNKTYPE, value.source
                tar.addfile(info)
            elif isinstance(value, Dir):
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size = len(value)
                tar.addfile(info, io.BytesIO(value))
    return raw.getvalue()


def python_files(
    version: str = "3.11.2",
    *,
    prefix: str = "usr/local",
    venv: bool = True,
    ensurepip: bool = True,
    patchlevel: bool = True,
) -> LayerFiles:
    """A CPython installation's landmarks as reprolock reads them (never run): the
    interpreter, its stdlib's venv and ensurepip with a pip wheel, ``patchlevel.h``."""
    feature = ".".join(version.split(".")[:2])
    lib = f"{prefix}/lib/python{feature}"
    files: LayerFiles = {
        f"{prefix}/bin/python{feature}": b"\x7fELF python",
        f"{prefix}/bin/python3": Link(f"python{feature}"),
        f"{lib}/os.py": b"# os\n",
    }
    if venv:
        files[f"{lib}/venv/__init__.py"] = b"# venv\n"
    if ensurepip:
        files[f"{lib}/ensurepip/__init__.py"] = b"# ensurepip\n"
        files[f"{lib}/ensurepip/_bundled/pip-24.0-py3-none-any.whl"] = b"PK"
    if patchlevel:
        files[f"{prefix}/include/python{feature}/patchlevel.h"] = (
            f'#define PY_VERSION "{version}"\n'.encode()
        )
    return files


def layer(files: LayerFiles) -> tuple[bytes, str]:
    """A gzip layer tarball and its diff_id (digest of the uncompressed tar)."""
    tar_bytes = layer_tar(files)
    return gzip.compress(tar_bytes, mtime=0), sha(tar_bytes)


@dataclass
class Image:
    """One single-platform image, ready to push."""

    os: str = "linux"
    architecture: str = "amd64"
    variant: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    user: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    layers: list[LayerFiles] = field(default_factory=lambda: [{"etc/hostname": b"x\n"}])
    docker: bool = False  # Docker v2 schema 2 media types instead of OCI

    def blobs(self) -> tuple[bytes, bytes, list[bytes]]:
        """(manifest, config, layer blobs)."""
        built = [layer(files) for files in self.layers]
        config: dict[str, Any] = {
            "architecture": self.architecture,
            "os": self.os,
            "config": {
                "Env": [f"{k}={v}" for k, v in self.env.items()],
                "User": self.user,
                "Labels": self.labels,
            },
            "rootfs": {"type": "layers", "diff_ids": [d for _, d in built]},
        }
        if self.variant:
            config["variant"] = self.variant
        config_bytes = json.dumps(config, sort_keys=True).encode()
        layer_type = (
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
            if self.docker
            else "application/vnd.oci.image.layer.v1.tar+gzip"
        )
        manifest = {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST if self.docker else OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json"
                if self.docker
                else "application/vnd.oci.image.config.v1+json",
                "digest": sha(config_bytes),
                "size": len(config_bytes),
            },
            "layers": [
                {"mediaType": layer_type, "digest": sha(blob), "size": len(blob)}
                for blob, _ in built
            ],
        }
        return json.dumps(manifest).encode(), config_bytes, [b for b, _ in built]


class Registry:
    """A running docker-registry on 127.0.0.1."""

    def __init__(self, root: Path, *, htpasswd: Path | None = None) -> None:
        self.port = free_port()
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        auth = f"auth:\n  htpasswd:\n    realm: test\n    path: {htpasswd}\n" if htpasswd else ""
        (root / "config.yml").write_text(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n{auth}"
        )
        self.log = (root / "registry.log").open("wb")
        self.proc = subprocess.Popen(
            ["docker-registry", "serve", str(root / "config.yml")],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.session = requests.Session()
        if htpasswd:
            self.session.auth = ("pusher", "push-secret")
        deadline = time.monotonic() + 20
        while True:
            try:
                if self.session.get(f"{self.url}/v2/", timeout=1).status_code in (200, 401):
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(
                    f"docker-registry did not start: {(root / 'registry.log').read_text()}"
                )
            time.sleep(0.05)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()

    # -- pushing over the registry API ------------------------------------------------------
    def push_blob(self, repo: str, data: bytes) -> str:
        digest = sha(data)
        start = self.session.post(f"{self.url}/v2/{repo}/blobs/uploads/")
        assert start.status_code == 202, start.text
        location = start.headers["Location"]
        if location.startswith("/"):
            location = self.url + location
        sep = "&" if "?" in location else "?"
        put = self.session.put(
            f"{location}{sep}digest={digest}",
            data=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert put.status_code == 201, put.text
        return digest

    def push_manifest(self, repo: str, reference: str, body: bytes, media_type: str) -> str:
        response = self.session.put(
            f"{self.url}/v2/{repo}/manifests/{reference}",
            data=body,
            headers={"Content-Type": media_type},
        )
        assert response.status_code == 201, response.text
        return sha(body)

    def push_image(self, repo: str, tag: str | None, image: Image) -> dict[str, str]:
        manifest, config, blobs = image.blobs()
        for blob in (config, *blobs):
            self.push_blob(repo, blob)
        media = DOCKER_MANIFEST if image.docker else OCI_MANIFEST
        digest = self.push_manifest(repo, tag or sha(manifest), manifest, media)
        return {
            "manifest": digest,
            "config": sha(config),
            "diff_ids": json.loads(config)["rootfs"]["diff_ids"],
        }

    def push_index(
        self,
        repo: str,
        tag: str,
        images: list[Image],
        *,
        docker: bool = False,
    ) -> dict[str, Any]:
        entries, pushed = [], []
        for image in images:
            image.docker = docker
            info = self.push_image(repo, None, image)
            manifest, _, _ = image.blobs()
            platform = {"os": image.os, "architecture": image.architecture}
            if image.variant:
                platform["variant"] = image.variant
            entries.append(
                {
                    "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST,
                    "digest": info["manifest"],
                    "size": len(manifest),
                    "platform": platform,
                }
            )
            pushed.append(info)
        index = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": DOCKER_LIST if docker else OCI_INDEX,
                "manifests": entries,
            }
        ).encode()
        digest = self.push_manifest(repo, tag, index, DOCKER_LIST if docker else OCI_INDEX)
        return {"index": digest, "images": pushed}


def htpasswd_file(folder: Path, users: dict[str, str]) -> Path:
    """An htpasswd file for ``users`` (bcrypt); the test is skipped without ``htpasswd``
    (Debian's apache2-utils), and fails in CI."""
    realparts.require("htpasswd")
    path = folder / "htpasswd"
    lines = []
    for user, password in users.items():
        out = subprocess.run(
            ["htpasswd", "-Bbn", user, password], check=True, capture_output=True, text=True
        ).stdout.strip()
        lines.append(out)
    path.write_text("\n".join(lines) + "\n")
    return path


class Front(ThreadingHTTPServer):
    """A loopback front for a registry: a bearer-token flow, or failures on demand."""

    daemon_threads = True

    def __init__(self, backend: Registry) -> None:
        super().__init__(("127.0.0.1", 0), _FrontHandler)
        self.backend = backend
        self.require_token = False
        self.token_users: dict[str, str] = {}  # empty: anonymous tokens
        self.status: int | None = None  # answer every /v2 request with this status
        self.corrupt_manifests = False
        self.corrupt_blobs = False  # same length, one byte changed
        self.pad_blobs = False  # one byte more than the descriptor says
        self.requests: list[tuple[str, str | None]] = []

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class _FrontHandler(BaseHTTPRequestHandler):
    server: Front

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        front = self.server
        front.requests.append((self.path, self.headers.get("Authorization")))
        if self.path.startswith("/token"):
            auth = self.headers.get("Authorization", "")
            if front.token_users:
                user, _, password = (
                    base64.b64decode(auth.removeprefix("Basic ") or b"")
                    .decode(errors="replace")
                    .partition(":")
                )
                if front.token_users.get(user) != password:
                    self._send(401, b'{"details":"bad credentials"}', {})
                    return
            self._send(200, b'{"token": "good-token"}', {"Content-Type": "application/json"})
            return
        if front.status is not None:
            self._send(
                front.status,
                b'{"errors":[{"code":"TOOMANYREQUESTS"}]}',
                {"Retry-After": "0", "Content-Type": "application/json"},
            )
            return
        if front.require_token and self.headers.get("Authorization") != "Bearer good-token":
            repo = self.path.split("/v2/", 1)[-1].rsplit("/manifests/", 1)[0]
            realm = f"http://{front.host}/token"
            self._send(
                401,
                b'{"errors":[{"code":"UNAUTHORIZED"}]}',
                {
                    "WWW-Authenticate": f'Bearer realm="{realm}",service="front",'
                    f'scope="repository:{repo}:pull"'
                },
            )
            return
        upstream = requests.get(
            front.backend.url + self.path,
            headers={k: v for k, v in self.headers.items() if k.lower() in ("accept", "range")},
        )
        body = upstream.content
        if front.corrupt_manifests and "/manifests/" in self.path:
            body = body.replace(b'"schemaVersion": 2', b'"schemaVersion":  2')
            body = body.replace(b'"schemaVersion":2', b'"schemaVersion": 2')
        if front.corrupt_blobs and "/blobs/" in self.path and body:
            body = body[:-1] + bytes([body[-1] ^ 1])
        if front.pad_blobs and "/blobs/" in self.path:
            body += b" "
        headers = {
            k: v
            for k, v in upstream.headers.items()
            if k.lower() in ("content-type", "docker-content-digest")
        }
        self._send(upstream.status_code, body, headers)


def start_front(backend: Registry) -> Iterator[Front]:
    front = Front(backend)
    thread = threading.Thread(target=front.serve_forever, daemon=True)
    thread.start()
    try:
        yield front
    finally:
        front.shutdown()
        front.server_close()
