"""Hostile registries and apt archives: logins stay with their hosts, every document and
blob is bounded, malformed headers are source errors, and index bombs are cut off."""

from __future__ import annotations

import base64
import hashlib
import json
import lzma
import uuid
from pathlib import Path

import pytest

from tests.hostile.harness import Handler, HostileServer, Sandbox, endless
from tests.ociregistry import Image, Registry

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = json.dumps(
    {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
).encode()


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def manifest(config: bytes = CONFIG, *, size: int | None = None) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": digest(config),
                "size": len(config) if size is None else size,
            },
            "layers": [],
        }
    ).encode()


def base_spec(sandbox: Sandbox, ref: str, extra: str = "") -> None:
    (sandbox.work / "reprolock.toml").write_text(
        f'[environment]\npython = "3.11"\n\n[base]\nref = "{ref}"\n{extra}'
    )


def serve_image(
    server: HostileServer,
    body: bytes,
    *,
    headers: dict[str, str] | None = None,
    config: bytes = CONFIG,
    auth: str | None = None,
) -> None:
    """``/v2/repo/...``: the manifest and the config; with ``auth``, a request without
    ``Authorization: auth`` gets a 401 (the challenge is set by the caller's headers)."""

    def guarded(handler: Handler, status: int, data: bytes, extra: dict[str, str]) -> None:
        if auth is not None and handler.headers.get("Authorization") != auth:
            handler.reply(401, b"{}", headers=headers or {})
            return
        handler.reply(status, data, OCI_MANIFEST, extra)

    server.route(
        "/v2/repo/manifests/", lambda h: guarded(h, 200, body, {} if auth else headers or {})
    )
    server.route("/v2/repo/blobs/", lambda h: guarded(h, 200, config, {}))


def docker_login(sandbox: Sandbox, host: str, user: str, password: str) -> None:
    folder = sandbox.home / ".docker"
    folder.mkdir(exist_ok=True)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    path = folder / "config.json"
    auths = json.loads(path.read_text())["auths"] if path.exists() else {}
    auths[host] = {"auth": token}
    path.write_text(json.dumps({"auths": auths}))


def host(server: HostileServer) -> str:
    return server.url.removeprefix("http://")


# -- 5. a token realm on another host gets no login ----------------------------------------------
def test_token_realm_on_another_host_gets_no_registry_login(
    sandbox: Sandbox, hostile: HostileServer
) -> None:
    tokens = HostileServer()
    try:
        tokens.route("/token", lambda h: h.reply(200, b'{"token": "anonymous-token"}'))
        challenge = f'Bearer realm="{tokens.url}/token",service="hostile"'
        serve_image(
            hostile,
            manifest(),
            headers={"WWW-Authenticate": challenge},
            auth="Bearer anonymous-token",
        )
        docker_login(sandbox, host(hostile), "alice", "registry-secret")
        base_spec(sandbox, f"{host(hostile)}/repo:1")
        sandbox.check(sandbox.run("lock"), [0])
        sent = [h.get("Authorization") for p, h in tokens.requests]
        assert sent == [None]
        # A login configured for the token service's own host is the one it gets.
        docker_login(sandbox, host(tokens), "bob", "token-host-secret")
        sandbox.check(sandbox.run("lock", "--refresh-base"), [0])
        expected = "Basic " + base64.b64encode(b"bob:token-host-secret").decode()
        assert [h.get("Authorization") for p, h in tokens.requests][-1] == expected
    finally:
        tokens.stop()


def test_token_realm_over_plain_http_is_refused(sandbox: Sandbox, hostile: HostileServer) -> None:
    challenge = 'Bearer realm="http://203.0.113.9/token",service="x"'
    serve_image(hostile, manifest(), headers={"WWW-Authenticate": challenge}, auth="never")
    docker_login(sandbox, host(hostile), "alice", "registry-secret")
    base_spec(sandbox, f"{host(hostile)}/repo:1")
    outcome = sandbox.run("lock")
    sandbox.check(outcome, [4], says=["over plain http; refusing"])
    assert outcome.seconds < 10


def test_token_with_a_newline_is_not_sent_as_a_header(
    sandbox: Sandbox, hostile: HostileServer
) -> None:
    hostile.route("/token", lambda h: h.reply(200, b'{"token": "a\\r\\nX-Injected: 1"}'))
    challenge = f'Bearer realm="{hostile.url}/token"'
    serve_image(hostile, manifest(), headers={"WWW-Authenticate": challenge}, auth="never")
    base_spec(sandbox, f"{host(hostile)}/repo:1")
    sandbox.check(sandbox.run("lock"), [4], says=["sent no usable token"])
    assert not any("X-Injected" in h for _, h in hostile.requests)


# -- 9. malformed answers are source errors --------------------------------------------------------
def test_malformed_docker_content_digest(sandbox: Sandbox, hostile: HostileServer) -> None:
    serve_image(hostile, manifest(), headers={"Docker-Content-Digest": "sha256:not-hex"})
    base_spec(sandbox, f"{host(hostile)}/repo:1")
    sandbox.check(sandbox.run("lock"), [4], says=["malformed Docker-Content-Digest"])


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b"{",
        b'{"mediaType": "' + OCI_MANIFEST.encode() + b'", "layers": 5}',
        b'{"mediaType": "' + OCI_MANIFEST.encode() + b'", "layers": [], "config": 1}',
        b'{"manifests": "x"}',
        b'{"layers": [], "config": {"digest": "sha256:../../x", "size": 1}}',
        b'{"layers": [' * 50_000 + b"]" * 50_000,
    ],
    ids=["list", "truncated", "layers", "config", "manifests", "digest", "nested"],
)
def test_malformed_manifests(sandbox: Sandbox, hostile: HostileServer, body: bytes) -> None:
    serve_image(hostile, body)
    base_spec(sandbox, f"{host(hostile)}/repo:1")
    sandbox.check(sandbox.run("lock"), [4], says=["repo:1"])


# -- 4. every document and blob is bounded ---------------------------------------------------
def test_endless_manifest_is_cut_at_its_cap(sandbox: Sandbox, hostile: HostileServer) -> None:
    hostile.route("/v2/repo/manifests/", lambda h: h.stream(200, endless(b" " * 65536)))
    base_spec(sandbox, f"{host(hostile)}/repo:1")
    sandbox.check(sandbox.run("lock"), [4], says=["exceeds reprolock's limit of 4 MiB"])


def test_config_blob_longer_than_its_descriptor(sandbox: Sandbox, hostile: HostileServer) -> None:
    serve_image(hostile, manifest(CONFIG, size=len(CONFIG)))
    hostile.route("/v2/repo/blobs/", lambda h: h.stream(200, endless(CONFIG)))
    base_spec(sandbox, f"{host(hostile)}/repo:1")
    sandbox.check(sandbox.run("lock"), [4], says=["longer than its descriptor's size"])


def test_config_blob_declared_beyond_the_cap(sandbox: Sandbox, hostile: HostileServer) -> None:
    serve_image(hostile, manifest(CONFIG, size=1 << 40))
    base_spec(sandbox, f"{host(hostile)}/repo:1")
    sandbox.check(sandbox.run("lock"), [4], says=["exceeds reprolock's limit of 16 MiB"])


# -- apt archives ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def xz_bomb() -> bytes:
    """512 MiB of zeros as ~80 KB of xz (the shape of the 305 KB → 4.2 GB Packages.xz)."""
    compressor = lzma.LZMACompressor(preset=1)
    block = b"\0" * (1 << 20)
    parts = [compressor.compress(block) for _ in range(512)]
    return b"".join([*parts, compressor.flush()])


def _apt_world(sandbox: Sandbox, registry: Registry, archive: HostileServer) -> None:
    repo = f"library/aptbomb{uuid.uuid4().hex[:6]}"
    image = Image(
        architecture="amd64",
        layers=[
            {
                "etc/os-release": b'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n',
                "var/lib/dpkg/status": b"Package: dpkg\nStatus: install ok installed\n"
                b"Version: 1.21\nArchitecture: amd64\n",
                "etc/apt/sources.list": b"deb http://deb.debian.org/debian bookworm main\n",
            }
        ],
    )
    registry.push_image(repo, "bookworm", image)
    (sandbox.work / "reprolock.toml").write_text(
        '[environment]\npython = "3.11"\n\n'
        f'[base]\nref = "{repo.removeprefix("library/")}:bookworm"\n\n'
        f'[apt]\npackages = ["tool"]\nmirror = "{archive.url}"\nallow-unsigned = true\n\n'
        f'[registry]\nmirrors = {{ "docker.io" = "{registry.host}" }}\n'
    )


def _release(files: dict[str, bytes]) -> bytes:
    lines = [
        "Suite: bookworm",
        "Codename: bookworm",
        "Components: main",
        "Architectures: amd64",
        "SHA256:",
    ]
    lines += [f" {hashlib.sha256(d).hexdigest()} {len(d)} {name}" for name, d in files.items()]
    return ("\n".join(lines) + "\n").encode()


def test_packages_xz_bomb_is_cut_off(
    sandbox: Sandbox, hostile: HostileServer, registry: Registry, xz_bomb: bytes
) -> None:
    """A signed (here: trusted unsigned) Release may list a bomb: the decompression is
    bounded whatever the Release says (once 305 KB took 4.2 GB)."""
    _apt_world(sandbox, registry, hostile)
    path = "main/binary-amd64/Packages.xz"
    hostile.route("/dists/bookworm/InRelease", lambda h: h.reply(404, b""))
    hostile.route("/dists/bookworm/Release", lambda h: h.reply(200, _release({path: xz_bomb})))
    hostile.route(f"/dists/bookworm/{path}", lambda h: h.reply(200, xz_bomb))
    outcome = sandbox.run("lock")
    sandbox.check(outcome, [4], says=["decompression bomb"])


def test_packages_longer_than_the_release_says_is_refused(
    sandbox: Sandbox, hostile: HostileServer, registry: Registry, xz_bomb: bytes
) -> None:
    """When the Release lists the uncompressed size too, that is the cap."""
    _apt_world(sandbox, registry, hostile)
    small = b"Package: tool\nVersion: 1\nArchitecture: amd64\n"
    files = {"main/binary-amd64/Packages.xz": xz_bomb, "main/binary-amd64/Packages": small}
    hostile.route("/dists/bookworm/InRelease", lambda h: h.reply(404, b""))
    hostile.route("/dists/bookworm/Release", lambda h: h.reply(200, _release(files)))
    hostile.route("/dists/bookworm/main/binary-amd64/Packages.xz", lambda h: h.reply(200, xz_bomb))
    outcome = sandbox.run("lock")
    sandbox.check(outcome, [4], says=["exceeds reprolock's limit"])


def test_endless_inrelease_is_cut_at_its_cap(
    sandbox: Sandbox, hostile: HostileServer, registry: Registry
) -> None:
    _apt_world(sandbox, registry, hostile)
    hostile.route("/dists/bookworm/InRelease", lambda h: h.stream(200, endless(b"A" * 65536)))
    outcome = sandbox.run("lock")
    sandbox.check(outcome, [4], says=["exceeds reprolock's limit of 16 MiB"])


def test_release_entries_cannot_leave_the_archive(
    sandbox: Sandbox, hostile: HostileServer, registry: Registry, tmp_path: Path
) -> None:
    """Paths and hashes in a Release are names inside the archive, never elsewhere."""
    _apt_world(sandbox, registry, hostile)
    data = b"x"
    text = _release({"../../../outside/Packages": data}).replace(
        b"Architectures: amd64\n", b"Architectures: amd64\nAcquire-By-Hash: yes\n"
    )
    hostile.route("/dists/bookworm/InRelease", lambda h: h.reply(404, b""))
    hostile.route("/dists/bookworm/Release", lambda h: h.reply(200, text))
    outcome = sandbox.run("lock")
    sandbox.check(outcome, [3, 4])
    assert not any("outside" in p for p, _ in hostile.requests)


# -- the docker config is the user's file, but still read with care ---------------------------
@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"\xff\xfe{}", "is not UTF-8"),
        (b"[" * 100_000, "nests too deeply"),
        (b'{"credsStore": "../../tmp/evil"}', "is not a helper name"),
    ],
    ids=["not-utf8", "nested", "helper-path"],
)
def test_hostile_docker_config(
    sandbox: Sandbox, hostile: HostileServer, content: bytes, says: str
) -> None:
    serve_image(hostile, manifest(), headers={"WWW-Authenticate": 'Basic realm="x"'}, auth="x")
    (sandbox.home / ".docker").mkdir()
    (sandbox.home / ".docker" / "config.json").write_bytes(content)
    base_spec(sandbox, f"{host(hostile)}/repo:1")
    sandbox.check(sandbox.run("lock"), [2], says=[says])
