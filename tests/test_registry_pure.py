"""Pure parts of the registry client: challenges, hosts, logins, manifests."""

from __future__ import annotations

import base64
import json

import pytest

from reprolock.errors import InputError
from reprolock.model import Platform
from reprolock.model.grammar import netloc_is_loopback as is_loopback
from reprolock.model.oci import Index, Manifest, OciPlatform, parse_config, parse_manifest
from reprolock.registry.auth import CredentialStore, Login
from reprolock.registry.client import RegistryClient, RegistryOptions, parse_challenge


def test_parse_challenge() -> None:
    scheme, params = parse_challenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/python:pull"'
    )
    assert scheme == "bearer"
    assert params == {
        "realm": "https://auth.docker.io/token",
        "service": "registry.docker.io",
        "scope": "repository:library/python:pull",
    }
    assert parse_challenge('Basic realm="Registry Realm"') == ("basic", {"realm": "Registry Realm"})


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost:5000", True),
        ("127.0.0.1:5000", True),
        ("127.1.2.3", True),
        ("[::1]:5000", True),
        ("registry.local:5000", False),
        ("10.0.0.1:5000", False),
        ("docker.io", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_endpoints_schemes_and_mirrors() -> None:
    import requests

    client = RegistryClient(
        requests.Session(),
        options=RegistryOptions(
            mirrors={"docker.io": "mirror.example.com"}, insecure=frozenset({"registry.local:5000"})
        ),
    )
    assert [e.base for e in client.endpoints("docker.io")] == [
        "https://mirror.example.com",
        "https://registry-1.docker.io",
    ]
    assert [e.base for e in client.endpoints("registry.local:5000")] == [
        "http://registry.local:5000"
    ]
    assert [e.base for e in client.endpoints("localhost:5000")] == ["http://localhost:5000"]
    assert [e.base for e in client.endpoints("nvcr.io")] == ["https://nvcr.io"]


def test_logins_from_docker_config() -> None:
    asked: list[tuple[str, str]] = []

    def helper(name: str, server: str) -> Login | None:
        asked.append((name, server))
        return Login("h", "s")

    config = {
        "auths": {
            "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub:pw").decode()},
            "ghcr.io": {"username": "gh", "password": "tok"},
        },
        "credHelpers": {"123.dkr.ecr.us-east-1.amazonaws.com": "ecr-login"},
        "credsStore": "desktop",
    }
    store = CredentialStore.from_text(json.dumps(config), source="c.json", helper=helper)
    assert store.login_for("docker.io") == Login("hub", "pw")
    assert store.login_for("ghcr.io") == Login("gh", "tok")
    assert store.login_for("123.dkr.ecr.us-east-1.amazonaws.com") == Login("h", "s")
    assert store.login_for("quay.io") == Login("h", "s")  # falls back to credsStore
    assert asked == [("ecr-login", "123.dkr.ecr.us-east-1.amazonaws.com"), ("desktop", "quay.io")]
    assert "pw" not in repr(store.login_for("docker.io"))


def test_bad_docker_config() -> None:
    with pytest.raises(InputError, match=r"c\.json: is not valid JSON"):
        CredentialStore.from_text("{", source="c.json")
    store = CredentialStore.from_text('{"auths": {"x": {"auth": "%%%"}}}', source="c.json")
    with pytest.raises(InputError, match=r'auths\."x"\.auth is not base64'):
        store.login_for("x")


def test_platform_matching() -> None:
    arm = Platform.parse("linux/arm64")
    assert OciPlatform(os="linux", architecture="arm64", variant="v8").matches(arm)
    assert OciPlatform(os="linux", architecture="arm64").matches(arm)
    assert not OciPlatform(os="linux", architecture="amd64").matches(arm)
    armv7 = Platform.parse("linux/arm/v7")
    assert OciPlatform(os="linux", architecture="arm", variant="v7").matches(armv7)
    assert not OciPlatform(os="linux", architecture="arm", variant="v6").matches(armv7)


def test_parse_manifest_and_index() -> None:
    digest = "sha256:" + "a" * 64
    index = parse_manifest(
        json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [
                    {
                        "digest": digest,
                        "size": 10,
                        "platform": {"os": "linux", "architecture": "amd64"},
                    },
                    {
                        "digest": digest,
                        "size": 10,
                        "platform": {"os": "unknown", "architecture": "unknown"},
                    },
                ],
            }
        ).encode(),
        "application/vnd.oci.image.index.v1+json",
    )
    assert isinstance(index, Index)
    assert index.platforms() == ["linux/amd64"]
    manifest = parse_manifest(
        json.dumps({"config": {"digest": digest, "size": 1}, "layers": []}).encode(), ""
    )
    assert isinstance(manifest, Manifest)
    with pytest.raises(ValueError, match="schema 1 manifests are obsolete"):
        parse_manifest(
            b'{"schemaVersion": 1, "fsLayers": []}',
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
        )
    with pytest.raises(ValueError, match=r"layers\[0\] has no digest"):
        parse_manifest(
            json.dumps({"config": {"digest": digest, "size": 1}, "layers": [{"size": 1}]}).encode(),
            "",
        )


def test_parse_config() -> None:
    config = parse_config(
        json.dumps(
            {
                "os": "linux",
                "architecture": "arm64",
                "variant": "v8",
                "config": {
                    "Env": ["A=1", "PATH=/x:/y", "EMPTY="],
                    "User": "app",
                    "Labels": {"b": "2", "a": "1"},
                    "Cmd": ["python"],
                },
                "rootfs": {"diff_ids": ["sha256:" + "b" * 64]},
            }
        ).encode()
    )
    assert config.env == (("A", "1"), ("PATH", "/x:/y"), ("EMPTY", ""))
    assert config.labels == (("a", "1"), ("b", "2"))
    assert config.cmd == ("python",)
    assert str(config.diff_ids[0]) == "sha256:" + "b" * 64
