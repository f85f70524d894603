"""Base images pinned by digest, against a real registry on loopback."""

from __future__ import annotations

import json
import os
import re
import stat
import tomllib
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Run
from tests.ociregistry import Front, Image, Registry, htpasswd_file

LockCli = Callable[..., Run]
CUDA_TAG = "12.4.1-cudnn-runtime-ubuntu22.04"
CUDA_ENV = {
    "CUDA_VERSION": "12.4.1",
    "NVIDIA_REQUIRE_CUDA": "cuda>=12.4 brand=tesla,driver>=470,driver<471",
    "PATH": "/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/bin:/bin",
}


def _repo() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def _cuda_images(marker: bytes = b"1") -> list[Image]:
    return [
        Image(
            architecture="amd64",
            env=CUDA_ENV,
            labels={"maintainer": "NVIDIA CORPORATION"},
            layers=[
                {"etc/os-release": b'ID=ubuntu\nVERSION_ID="22.04"\n'},
                {"usr/local/cuda/version.json": b'{"cuda": "12.4.1"}', "m": marker},
            ],
        ),
        Image(
            architecture="arm64",
            variant="v8",
            env=CUDA_ENV,
            layers=[
                {"etc/os-release": b'ID=ubuntu\nVERSION_ID="22.04"\n'},
                {"usr/local/cuda/version.json": b'{"cuda": "12.4.1"}', "m": marker},
            ],
        ),
    ]


def _spec(
    tmp_path: Path,
    ref: str,
    *,
    mirror: str | None = None,
    platforms: str = '"linux/amd64", "linux/arm64"',
    extra: str = "",
) -> None:
    mirrors = f'[registry]\nmirrors = {{ "docker.io" = "{mirror}" }}\n' if mirror else ""
    (tmp_path / "reprolock.toml").write_text(
        f'[environment]\npython = "3.11"\nplatforms = [{platforms}]\n\n'
        f'[base]\nref = "{ref}"\n\n{mirrors}{extra}'
    )


def _bases(tmp_path: Path) -> dict[str, dict[str, Any]]:
    lock = tomllib.loads((tmp_path / "reprolock.lock").read_text())
    return {t["platform"]: t["base"] for t in lock["targets"]}


def test_cuda_base_through_a_docker_hub_mirror(
    lock_cli: LockCli, tmp_path: Path, registry: Registry
) -> None:
    pushed = registry.push_index("nvidia/cuda", CUDA_TAG, _cuda_images())
    _spec(tmp_path, f"nvidia/cuda:{CUDA_TAG}", mirror=registry.host)
    run = lock_cli("lock")
    assert run.code == 0, run.err
    bases = _bases(tmp_path)
    amd, arm = bases["linux/amd64"], bases["linux/arm64"]
    assert amd["ref"] == arm["ref"] == f"nvidia/cuda:{CUDA_TAG}"
    assert amd["index-digest"] == arm["index-digest"] == pushed["index"]
    assert amd["manifest-digest"] == pushed["images"][0]["manifest"]
    assert arm["manifest-digest"] == pushed["images"][1]["manifest"]
    assert amd["config-digest"] == pushed["images"][0]["config"]
    assert amd["diff-ids"] == pushed["images"][0]["diff_ids"]
    assert amd["env"]["CUDA_VERSION"] == "12.4.1"
    assert amd["env"]["NVIDIA_REQUIRE_CUDA"] == CUDA_ENV["NVIDIA_REQUIRE_CUDA"]
    assert amd["labels"] == {"maintainer": "NVIDIA CORPORATION"}
    assert "not locked yet: [base]" not in run.err


def test_repushed_tag_keeps_the_digest_until_refresh_base(
    lock_cli: LockCli, tmp_path: Path, registry: Registry
) -> None:
    repo = f"nvidia/{_repo()}"
    first = registry.push_index(repo, CUDA_TAG, _cuda_images(b"1"))
    _spec(tmp_path, f"{repo}:{CUDA_TAG}", mirror=registry.host)
    assert lock_cli("lock").code == 0
    second = registry.push_index(repo, CUDA_TAG, _cuda_images(b"2"))  # a CVE rebuild
    assert second["index"] != first["index"]
    assert lock_cli("lock").code == 0
    assert lock_cli("lock", "--refresh").code == 0  # re-resolves Python, keeps the base pin
    assert _bases(tmp_path)["linux/amd64"]["index-digest"] == first["index"]
    run = lock_cli("lock", "--refresh-base")
    assert run.code == 0, run.err
    bases = _bases(tmp_path)
    assert bases["linux/amd64"]["index-digest"] == second["index"]
    assert bases["linux/amd64"]["manifest-digest"] == second["images"][0]["manifest"]
    old, new = first["images"][0]["manifest"], second["images"][0]["manifest"]
    assert f"py3.11-amd64: base {repo}:{CUDA_TAG} moved: {old} -> {new}" in run.out


def test_single_platform_docker_manifest(
    lock_cli: LockCli, tmp_path: Path, registry: Registry
) -> None:
    repo = _repo()
    image = Image(docker=True, env={"PYTHON_VERSION": "3.11.2", "PATH": "/usr/bin"}, user="1000")
    pushed = registry.push_image(repo, "3.11-slim", image)
    _spec(tmp_path, f"{registry.host}/{repo}:3.11-slim", platforms='"linux/amd64"')
    run = lock_cli("lock")
    assert run.code == 0, run.err
    lock = tomllib.loads((tmp_path / "reprolock.lock").read_text())
    [target] = lock["targets"]
    # no [python]: no interpreter is chosen, so the base's contents are not read for one
    assert target["python"] == "3.11" and "interpreter" not in target
    assert "index-digest" not in target["base"]
    assert target["base"]["manifest-digest"] == pushed["manifest"]
    assert target["base"]["user"] == "1000"


def test_docker_manifest_list(lock_cli: LockCli, tmp_path: Path, registry: Registry) -> None:
    repo = _repo()
    pushed = registry.push_index(repo, "v1", _cuda_images(), docker=True)
    _spec(tmp_path, f"{registry.host}/{repo}:v1")
    assert lock_cli("lock").code == 0
    assert _bases(tmp_path)["linux/arm64"]["manifest-digest"] == pushed["images"][1]["manifest"]


def test_platform_missing_from_the_index(
    lock_cli: LockCli, tmp_path: Path, registry: Registry
) -> None:
    repo = _repo()
    registry.push_index(repo, "amd-only", [Image(architecture="amd64")])
    _spec(tmp_path, f"{registry.host}/{repo}:amd-only")
    run = lock_cli("lock")
    assert run.code == 4
    assert run.err == (
        f"error: {registry.host}/{repo}:amd-only has no image for linux/arm64; it has "
        "linux/amd64.\nChoose another platform in environment.platforms, or another image.\n"
    )


def test_single_platform_image_for_another_platform(
    lock_cli: LockCli, tmp_path: Path, registry: Registry
) -> None:
    repo = _repo()
    registry.push_image(repo, "x", Image(architecture="amd64"))
    _spec(tmp_path, f"{registry.host}/{repo}:x", platforms='"linux/arm64"')
    run = lock_cli("lock")
    assert run.code == 4
    assert (
        f"{registry.host}/{repo}:x is a single-platform image for linux/amd64, not linux/arm64."
    ) in run.err


def test_unknown_tag_and_repository(lock_cli: LockCli, tmp_path: Path, registry: Registry) -> None:
    repo = _repo()
    registry.push_image(repo, "exists", Image())
    _spec(tmp_path, f"{registry.host}/{repo}:gone", platforms='"linux/amd64"')
    run = lock_cli("lock")
    assert run.code == 4
    assert run.err == (
        f'error: {registry.host}/{repo}:gone: unknown tag "gone" in '
        f"http://{registry.host}/{repo}.\nCheck the tag; registries delete old tags (NVIDIA "
        "removes end-of-life CUDA tags).\n"
    )
    _spec(tmp_path, f"{registry.host}/{repo}:exist", platforms='"linux/amd64"')
    run = lock_cli("lock")
    assert run.code == 4
    assert "Tags with close names: exists." in run.err
    _spec(tmp_path, f"{registry.host}/nobody/nothing:1", platforms='"linux/amd64"')
    run = lock_cli("lock")
    assert run.code == 4
    assert f"no repository nobody/nothing on http://{registry.host}" in run.err


def test_malformed_reference_is_bad_input(lock_cli: LockCli, tmp_path: Path) -> None:
    _spec(tmp_path, "Nvidia/CUDA:12")
    run = lock_cli("lock")
    assert run.code == 2
    assert 'base.ref: invalid repository name "Nvidia/CUDA"' in run.err


def test_bearer_token_flow(
    lock_cli: LockCli, tmp_path: Path, registry: Registry, front: Front
) -> None:
    repo = _repo()
    pushed = registry.push_image(repo, "1", Image())
    front.require_token = True
    _spec(tmp_path, f"{front.host}/{repo}:1", platforms='"linux/amd64"')
    run = lock_cli("lock")
    assert run.code == 0, run.err
    assert _bases(tmp_path)["linux/amd64"]["manifest-digest"] == pushed["manifest"]
    token_requests = [p for p, _ in front.requests if p.startswith("/token")]
    assert token_requests == [f"/token?service=front&scope=repository%3A{repo}%3Apull"]
    # One token, reused for the config blob.
    assert any(a == "Bearer good-token" and "/blobs/" in p for p, a in front.requests)


def test_token_service_refuses_bad_credentials(
    lock_cli: LockCli,
    tmp_path: Path,
    registry: Registry,
    front: Front,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = _repo()
    registry.push_image(repo, "1", Image())
    front.require_token = True
    front.token_users = {"alice": "right"}
    config = tmp_path / "docker"
    config.mkdir()
    import base64

    (config / "config.json").write_text(
        json.dumps({"auths": {front.host: {"auth": base64.b64encode(b"alice:wrong").decode()}}})
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    _spec(tmp_path, f"{front.host}/{repo}:1", platforms='"linux/amd64"')
    run = lock_cli("lock")
    assert run.code == 4
    assert run.err == (
        f"error: the token service http://{front.host}/token refused a token for {repo} (401)."
        "\nCheck your login for this registry (docker login, ~/.docker/config.json).\n"
    )
    assert "wrong" not in run.err
    (config / "config.json").write_text(
        json.dumps({"auths": {front.host: {"username": "alice", "password": "right"}}})
    )
    assert lock_cli("lock").code == 0


@pytest.mark.parametrize(
    ("status", "message", "hint"),
    [
        (
            429,
            "{base} is rate-limiting requests (429 Too Many Requests).",
            "Log in (anonymous Docker Hub pulls are limited), wait, or use a mirror.",
        ),
        (500, "{base} answered 500 for 1.", "The registry is failing; retry later."),
        (
            403,
            "access to {base}/any/image is forbidden (403).",
            "Your login lacks pull rights on this repository.",
        ),
    ],
)
def test_registry_failures(
    lock_cli: LockCli, tmp_path: Path, front: Front, status: int, message: str, hint: str
) -> None:
    front.status = status
    _spec(tmp_path, f"{front.host}/any/image:1", platforms='"linux/amd64"')
    run = lock_cli("lock")
    assert run.code == 4
    base = f"http://{front.host}"
    assert run.err == f"error: {front.host}/any/image:1: {message.format(base=base)}\n{hint}\n"
    tries = [p for p, _ in front.requests if p == "/v2/any/image/manifests/1"]
    assert len(tries) == (5 if status in (429, 500) else 1)  # retried with backoff


def test_manifest_digest_mismatch(
    lock_cli: LockCli, tmp_path: Path, registry: Registry, front: Front
) -> None:
    repo = _repo()
    pushed = registry.push_image(repo, "1", Image())
    front.corrupt_manifests = True
    _spec(tmp_path, f"{front.host}/{repo}:1", platforms='"linux/amd64"')
    run = lock_cli("lock")
    assert run.code == 4
    assert re.fullmatch(
        f"error: {re.escape(front.host)}/{repo}:1: the manifest from http://"
        f"{re.escape(front.host)} does not match its digest \\(expected {pushed['manifest']}, "
        "got sha256:[0-9a-f]{64}\\).\nThe registry or a proxy altered it; do not use this "
        "image.\n",
        run.err,
    ), run.err


def test_blob_digest_mismatch(
    lock_cli: LockCli, tmp_path: Path, registry: Registry, front: Front
) -> None:
    repo = _repo()
    pushed = registry.push_image(repo, "1", Image())
    front.corrupt_blobs = True
    _spec(tmp_path, f"{front.host}/{repo}:1", platforms='"linux/amd64"')
    run = lock_cli("lock")
    assert run.code == 4
    assert run.err.startswith(
        f"error: {front.host}/{repo}:1: blob {pushed['config']} from http://{front.host} does "
        "not match its digest (got sha256:"
    )


def test_blob_longer_than_its_descriptor_is_cut_off(
    lock_cli: LockCli, tmp_path: Path, registry: Registry, front: Front
) -> None:
    repo = _repo()
    pushed = registry.push_image(repo, "1", Image())
    front.pad_blobs = True
    _spec(tmp_path, f"{front.host}/{repo}:1", platforms='"linux/amd64"')
    run = lock_cli("lock")
    assert run.code == 4
    assert run.err.startswith(
        f"error: {front.host}/{repo}:1: blob {pushed['config']} from http://{front.host} is "
        "longer than its descriptor's size ("
    ), run.err


def test_basic_auth_registry_with_docker_config_and_helper(
    lock_cli: LockCli,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tmp_path_factory.mktemp("authreg")
    htpasswd = htpasswd_file(folder, {"pusher": "push-secret", "reader": "read-secret"})
    secured = Registry(folder / "reg", htpasswd=htpasswd)
    try:
        repo = _repo()
        pushed = secured.push_image(repo, "1", Image())
        _spec(tmp_path, f"{secured.host}/{repo}:1", platforms='"linux/amd64"')
        monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-such-config"))
        run = lock_cli("lock")
        assert run.code == 4
        assert run.err == (
            f"error: {secured.host}/{repo}:1: the registry http://{secured.host} requires a "
            f"login for {repo} (401 Unauthorized).\nRun `docker login {secured.host}` or add "
            "the login to ~/.docker/config.json.\n"
        )
        # A credential helper, as `docker login` with a keychain sets up.
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        helper = bin_dir / "docker-credential-testkeys"
        helper.write_text(
            "#!/bin/sh\nread server\n"
            'echo "{\\"Username\\": \\"reader\\", \\"Secret\\": \\"read-secret\\"}"\n'
        )
        helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
        config = tmp_path / "docker"
        config.mkdir()
        (config / "config.json").write_text(json.dumps({"credHelpers": {secured.host: "testkeys"}}))
        monkeypatch.setenv("DOCKER_CONFIG", str(config))
        monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
        run = lock_cli("lock")
        assert run.code == 0, run.err
        assert _bases(tmp_path)["linux/amd64"]["manifest-digest"] == pushed["manifest"]
        assert "read-secret" not in (tmp_path / "reprolock.lock").read_text()
    finally:
        secured.stop()
