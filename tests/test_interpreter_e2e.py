"""End to end with real parts: images whose interpreter reprolock provides, built by dockerd
from the lock and verified without running them — then run.

- A base without Python (``debootstrap --variant=minbase bookworm``): ``interpreter = "auto"``
  pins Debian's real ``python3.11``/``python3.11-venv`` (and their closure) from a signed
  loopback apt repository; then ``interpreter = "standalone"`` takes a relocatable
  ``install_only`` CPython from a loopback python-build-standalone release folder.
- A GPU target on a base published in the loopback registry as
  ``library/python:3.11-slim-bookworm``: ``[base] image = "auto"`` chooses it (every CUDA
  library comes from wheels), and inside the image ``ctypes.CDLL`` loads the
  ``nvidia-cuda-runtime-cu12`` wheel's ``libcudart.so.12`` (no GPU needed to load it).

Each image builds, ``docker run IMAGE python -c "import sys, requests; …"`` prints the
locked version, and ``verify image`` reports nothing.  Sizes and build times are printed
in the test summary.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests import baseimages, realparts
from tests.aptrepo import AptRepo, GpgKey, needs_apt_tools, serve_repo
from tests.conftest import SUMMARY, Run, run_cli
from tests.dockerd import Dockerd, import_tar
from tests.ociregistry import Registry
from tests.pyindex import IndexServer, build_wheel, serve

pytestmark = needs_apt_tools

REQUESTS = """__version__ = "2.32.3"
"""
CDLL = (
    "import ctypes, os, sys, nvidia.cuda_runtime as rt; "
    "path = os.path.join(os.path.dirname(rt.__file__), 'lib', 'libcudart.so.12'); "
    "ctypes.CDLL(path); print(sys.version.split()[0], path)"
)


@dataclass
class World:
    dockerd: Dockerd
    registry: Registry
    index: IndexServer
    root: Path
    key: GpgKey
    apt_url: str
    standalone_url: str
    standalone_version: str
    minbase: str  # the pushed reference
    cuda_version: str
    times: dict[str, float] = field(default_factory=dict)


@pytest.fixture(scope="module")
def world(
    dockerd: Dockerd, registry: Registry, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    root = tmp_path_factory.mktemp("interp-e2e")
    start = time.monotonic()
    minbase_tar, debs = baseimages.minbase(root)
    realparts.require("patchelf")
    standalone = baseimages.standalone_python()
    if standalone is None:
        why = (
            "a standalone CPython is made from the Python running the tests: it needs "
            "ensurepip's bundled wheels (a from-source build, not a distribution's python3)"
        )
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    tarball, version = standalone
    cudart, cuda_version = baseimages.libcudart()
    provisioned = time.monotonic() - start
    import_tar(dockerd, minbase_tar, baseimages.MINBASE_TAG)
    minbase = f"{registry.host}/reprolock/minbase:bookworm"
    dockerd.docker("tag", baseimages.MINBASE_TAG, minbase)
    dockerd.docker("push", minbase)
    baseimages.push_python_slim(dockerd, registry, root)
    # Debian's real python3.11 and its closure, in a signed loopback repository
    key = GpgKey(root / "gnupg")
    repo = AptRepo(root / "repo")
    for deb in debs.glob("*.deb"):
        shutil.copy2(deb, repo.root / "pool" / "main" / deb.name)
    repo.publish("bookworm", key)
    baseimages.serve_standalone(root / "pbs", tarball)
    for index_server in serve():
        index = index_server.add_index("e2e", root / "index")
        wheels = root / "wheels"
        wheels.mkdir()
        index.add(
            build_wheel(
                wheels,
                "requests",
                "2.32.3",
                extra_files={"requests/__init__.py": REQUESTS.encode()},
            )
        )
        index.add(
            build_wheel(
                wheels,
                "nvidia-cuda-runtime-cu12",
                cuda_version,
                tag="py3-none-manylinux2014_x86_64",
                extra_files={
                    "nvidia/__init__.py": b"",
                    "nvidia/cuda_runtime/__init__.py": b"",
                    "nvidia/cuda_runtime/lib/libcudart.so.12": cudart.read_bytes(),
                },
            )
        )
        with serve_repo(repo.root) as apt_url, serve_repo(root / "pbs") as standalone_url:
            world = World(
                dockerd=dockerd,
                registry=registry,
                index=index_server,
                root=root,
                key=key,
                apt_url=apt_url,
                standalone_url=standalone_url,
                standalone_version=version,
                minbase=minbase,
                cuda_version=cuda_version,
            )
            world.times["provision (cached after the first run)"] = provisioned
            yield world
            for what, seconds in world.times.items():
                SUMMARY.append(f"interpreter e2e: {what}: {seconds:.1f} s")


def _project(world: World, name: str, spec: str) -> Path:
    context = world.root / name
    context.mkdir()
    (context / "archive.gpg").write_bytes(world.key.public)
    (context / "reprolock.toml").write_text(
        spec
        + f'\n[[python.index]]\nname = "e2e"\nurl = "{world.index.url("e2e")}"\ndefault = true\n'
        + f'\n[registry]\nmirrors = {{ "docker.io" = "{world.registry.host}" }}\n'
    )
    return context


def _build(world: World, context: Path, tag: str) -> dict[str, Any]:
    start = time.monotonic()
    for args in (["lock"], ["fetch"], ["dockerfile"]):
        run = run_cli("--cache-dir", str(world.root / "cache"), *args, cwd=context)
        assert run.code == 0, (args, run.err)
    world.times[f"{tag}: lock+fetch+dockerfile"] = time.monotonic() - start
    start = time.monotonic()
    world.dockerd.buildkit(context, "Dockerfile", tag)
    world.times[f"{tag}: docker build"] = time.monotonic() - start
    size = int(world.dockerd.docker("image", "inspect", "-f", "{{.Size}}", tag).stdout)
    SUMMARY.append(f"interpreter e2e: {tag}: image {size / 1e6:.1f} MB")
    lock: dict[str, Any] = tomllib.loads((context / "reprolock.lock").read_text())
    return lock


def _verify(world: World, context: Path, tag: str) -> Run:
    archive = world.root / f"{tag.replace('/', '_').replace(':', '_')}.tar"
    world.dockerd.docker("save", "-o", str(archive), tag)
    return run_cli("--format", "json", "verify", "image", f"docker-archive:{archive}", cwd=context)


def _python(world: World, tag: str, code: str) -> str:
    return (
        world.dockerd.docker("run", "--rm", "--network", "none", tag, "python", "-c", code)
        .stdout.decode()
        .strip()
    )


def test_minbase_with_the_distributions_python(world: World) -> None:
    context = _project(
        world,
        "apt",
        '[environment]\npython = "3.11"\n\n'
        f'[base]\nref = "{world.minbase}"\n\n'
        '[python]\nrequirements = ["requests"]\ninterpreter = "auto"\n\n'
        f'[apt]\nmirror = "{world.apt_url}"\nkeyrings = ["archive.gpg"]\n',
    )
    lock = _build(world, context, "reprolock-interp/apt:1")
    [target] = lock["targets"]
    interpreter = target["interpreter"]
    assert interpreter["source"] == "apt"
    assert interpreter["packages"] == ["python3.11", "python3.11-venv"]
    apt = {p["name"]: p["version"] for p in target["apt"]}
    assert {"python3.11", "python3.11-venv", "python3.11-minimal"} <= set(apt)
    assert apt["python3.11"].startswith(interpreter["version"] + "-")
    assert target["python"] == interpreter["version"]
    assert "pythons" not in target["base"]["facts"]  # minbase has no Python at all
    out = _python(world, "reprolock-interp/apt:1", "import sys, requests; print(sys.version)")
    assert out.split()[0] == interpreter["version"]
    report = _verify(world, context, "reprolock-interp/apt:1")
    assert report.code == 0, report.out
    assert json.loads(report.out)["findings"] == []


def test_minbase_with_a_standalone_python(world: World) -> None:
    context = _project(
        world,
        "standalone",
        '[environment]\npython = "3.11"\n\n'
        f'[base]\nref = "{world.minbase}"\n\n'
        '[python]\nrequirements = ["requests"]\ninterpreter = "standalone"\n'
        f'[python.standalone]\nrelease = "{baseimages.STANDALONE_RELEASE}"\n'
        f'url = "{world.standalone_url}"\n',
    )
    lock = _build(world, context, "reprolock-interp/standalone:1")
    [target] = lock["targets"]
    interpreter = target["interpreter"]
    name = baseimages.standalone_name(world.standalone_version)
    assert interpreter["source"] == "standalone"
    assert interpreter["version"] == world.standalone_version == target["python"]
    assert interpreter["url"] == (
        f"{world.standalone_url}/{baseimages.STANDALONE_RELEASE}/{name.replace('+', '%2B')}"
    )
    assert len(interpreter["sha256"]) == 64
    assert "apt" not in target  # nothing from the archive
    out = _python(
        world, "reprolock-interp/standalone:1", "import sys, requests; print(sys.version)"
    )
    assert out.split()[0] == world.standalone_version
    report = _verify(world, context, "reprolock-interp/standalone:1")
    assert report.code == 0, report.out
    assert json.loads(report.out)["findings"] == []


def test_gpu_image_on_the_python_slim_base(world: World) -> None:
    context = _project(
        world,
        "gpu",
        '[environment]\npython = "3.11"\n\n'
        '[gpu]\ndevices = ["A100"]\ndriver = "550.54.15"\ncuda = "12.4"\n\n'
        '[base]\nimage = "auto"\nos = "bookworm"\n\n'
        f'[python]\nrequirements = ["nvidia-cuda-runtime-cu12=={world.cuda_version}"]\n',
    )
    lock = _build(world, context, "reprolock-interp/gpu:1")
    [target] = lock["targets"]
    assert target["base"]["ref"] == "python:3.11-slim-bookworm"
    assert target["base"]["choice"]["image"] == "auto"
    assert target["interpreter"]["source"] == "base"
    assert target["interpreter"]["path"] == "/usr/local/bin/python3.11"
    assert target["cuda"]["toolkit"].startswith("12.4")
    out = _python(world, "reprolock-interp/gpu:1", CDLL)
    version, path = out.split()
    assert version == target["python"]
    assert path == "/opt/venv/lib/python3.11/site-packages/nvidia/cuda_runtime/lib/libcudart.so.12"
    config = json.loads(
        world.dockerd.docker(
            "image", "inspect", "-f", "{{json .Config}}", "reprolock-interp/gpu:1"
        ).stdout
    )
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["NVIDIA_VISIBLE_DEVICES"] == "all"
    assert env["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility"
    assert env["PATH"].startswith("/opt/venv/bin:/usr/local/bin:")
    report = _verify(world, context, "reprolock-interp/gpu:1")
    assert report.code == 0, report.out
    assert json.loads(report.out)["findings"] == []
