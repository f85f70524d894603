"""Opt-in checks against live PyPI: `python -m pytest -m live` (never selected in CI)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli

pytestmark = pytest.mark.live


def test_live_pypi_lock_for_arm64_from_any_host(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "reprolock.toml").write_text(
        '[environment]\npython = "3.11"\nplatforms = ["linux/arm64"]\n'
        '[python]\nrequirements = ["numpy==2.1.3", "requests"]\n'
    )
    run = cli("--cache-dir", str(tmp_path / "cache"), "lock", cwd=tmp_path)
    assert run.code == 0, run.err
    lock = tomllib.loads((tmp_path / "reprolock.lock").read_text())
    numpy = next(p for p in lock["targets"][0]["packages"] if p["name"] == "numpy")
    [wheel] = numpy["wheels"]
    assert "aarch64" in wheel["filename"] and "cp311" in wheel["filename"]
    assert len(wheel["sha256"]) == 64


def test_live_apt_closure_on_debian_bookworm_agrees_with_apt_get(tmp_path: Path) -> None:
    """git and libgl1 on a debootstrap'd bookworm (the dockerd tests' cached rootfs),
    from deb.debian.org; apt-get on the same dpkg status is the oracle."""
    import os
    import tarfile

    from reprolock.api.apt_layer import BaseFiles, resolve_apt
    from reprolock.api.network import NetOptions
    from reprolock.model import Platform
    from reprolock.net.config import NetConfig
    from reprolock.spec.parse import parse_spec
    from tests.aptrepo import apt_get_simulate, have_tools

    tarball = Path.home() / ".cache" / "reprolock-tests" / "bookworm-python3.tar"
    if not tarball.exists() or not have_tools():
        pytest.skip("needs the dockerd tests' bookworm rootfs and the apt tools")
    wanted = ("var/lib/dpkg/status", "etc/apt/", "usr/share/keyrings/")
    files: dict[str, bytes] = {}
    with tarfile.open(tarball) as tar:
        for member in tar:
            name = member.name.removeprefix("./")
            extracted = tar.extractfile(member) if member.isfile() else None
            if extracted is not None and name.startswith(wanted):
                files[name] = extracted.read()
    from reprolock import api

    spec = parse_spec(
        '[environment]\npython = "3.11"\n[apt]\npackages = ["git", "libgl1"]\n',
        file="reprolock.toml",
        matrices=api.shipped_matrices(),
        read_file=lambda n: "",
    )
    net = NetOptions(config=NetConfig.from_environment(dict(os.environ)), cache_dir=tmp_path / "c")
    result = resolve_apt(
        spec, "live", Platform.parse("linux/amd64"), BaseFiles(files=files), net, keyrings={}
    )
    locked = sorted((p.name, p.version) for p in result.packages)
    keyring = files["usr/share/keyrings/debian-archive-keyring.gpg"]
    simulated = apt_get_simulate(
        tmp_path / "apt",
        status=files["var/lib/dpkg/status"].decode(),
        sources=files["etc/apt/sources.list"].decode(),
        keyring=keyring,
        packages=["git", "libgl1"],
    )
    print(f"\n{len(locked)} packages, e.g. {locked[:5]}")
    assert locked == simulated
    assert all(p.url.startswith("http://deb.debian.org/debian/pool/") for p in result.packages)


def test_torch_gpu_image_sizes(
    dockerd: Any, registry: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """torch==2.5.1 from live PyPI built by dockerd twice: on the python:3.11-slim-bookworm
    look-alike that `[base] image = "auto"` chooses (CUDA only from the wheels), and on the
    same base with a system CUDA 12.4.1 runtime (NVIDIA's libraries as Debian packages them:
    what an nvidia/cuda runtime base adds). Inside the first, torch.version.cuda is the
    lock's CUDA; both sizes go to the test summary (docs/benchmarks.md records them)."""
    import time

    from tests import baseimages
    from tests.conftest import SUMMARY, run_cli
    from tests.dockerd import import_tar

    root = tmp_path_factory.mktemp("torch")
    minbase_tar, _debs = baseimages.minbase(root)
    import_tar(dockerd, minbase_tar, baseimages.MINBASE_TAG)
    slim, _version = baseimages.push_python_slim(dockerd, registry, root)
    cuda_like = baseimages.push_cuda_like(dockerd, registry, root, slim)
    gpu = '[gpu]\ndevices = ["A100", "H100"]\ndriver = "550.54.15"\n\n'
    tail = (
        '[python]\nrequirements = ["torch==2.5.1"]\n\n'
        f'[registry]\nmirrors = {{ "docker.io" = "{registry.host}" }}\n'
    )
    sizes: dict[str, int] = {}
    wheels: Path | None = None
    for name, base in (
        ("slim", '[base]\nimage = "auto"\nos = "bookworm"\n\n'),
        ("system-cuda", f'[base]\nref = "{cuda_like}"\n\n'),
    ):
        context = root / name
        context.mkdir()
        (context / "reprolock.toml").write_text(
            f'[environment]\npython = "3.11"\n\n{gpu}{base}{tail}'
        )
        start = time.monotonic()
        run = run_cli("--cache-dir", str(root / "cache"), "lock", cwd=context)
        assert run.code == 0, run.err
        lock = tomllib.loads((context / "reprolock.lock").read_text())
        [target] = lock["targets"]
        here = context / ".reprolock" / target["id"] / "wheels"
        if wheels is not None:  # the same wheels: fetched once
            here.mkdir(parents=True)
            for wheel in wheels.iterdir():
                (here / wheel.name).hardlink_to(wheel)
        for args in (["fetch"], ["dockerfile", "--wheelhouse"]):
            run = run_cli("--cache-dir", str(root / "cache"), *args, cwd=context)
            assert run.code == 0, (args, run.err)
        wheels = here
        tag = f"reprolock-live/torch-{name}:1"
        dockerd.buildkit(context, "Dockerfile", tag)
        SUMMARY.append(f"torch {name}: lock+fetch+build {time.monotonic() - start:.0f} s")
        sizes[name] = int(dockerd.docker("image", "inspect", "-f", "{{.Size}}", tag).stdout)
        out = (
            dockerd.docker(
                "run",
                "--rm",
                "--network",
                "none",
                tag,
                "python",
                "-c",
                "import torch; print(torch.__version__, torch.version.cuda)",
            )
            .stdout.decode()
            .split()
        )
        toolkit = target["cuda"]["toolkit"]
        assert out[1] == ".".join(toolkit.split(".")[:2]), (out, toolkit)
        if name == "slim":
            assert target["base"]["ref"] == "python:3.11-slim-bookworm"
            assert target["base"]["choice"]["image"] == "auto"
    for name, size in sizes.items():
        SUMMARY.append(f"torch 2.5.1 image on {name}: {size / 1e6:.0f} MB")
    SUMMARY.append(f"system CUDA copy: {(sizes['system-cuda'] - sizes['slim']) / 1e6:.0f} MB")


def test_live_sdist_only_packages_build_into_an_image_that_verifies_clean(
    dockerd: Any, registry: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The issue's sdist-only packages from live PyPI: promise (setup.py only) and hydra-core,
    whose 1.3 needs antlr4-python3-runtime==4.9.* (an sdist alone). Locked (hydra-core 1.3.x,
    not the 0.11 a wheels-only resolver falls back to), fetched (the wheels built with their
    locked build environments), built by dockerd from the Dockerfile on the debootstrap'd
    bookworm, verified clean, and imported in the image."""
    import json
    import time

    from tests.conftest import SUMMARY, run_cli
    from tests.dockerd import BASE_TAG

    root = tmp_path_factory.mktemp("live-sdists")
    base = f"{registry.host}/reprolock/base:bookworm"
    dockerd.docker("tag", BASE_TAG, base)
    dockerd.docker("push", base)
    context = root / "context"
    context.mkdir()
    (context / "reprolock.toml").write_text(
        f'[environment]\npython = "3.11"\n\n[base]\nref = "{base}"\n\n'
        '[python]\nrequirements = ["promise==2.3", "hydra-core"]\n'
    )
    timings: dict[str, float] = {}
    for args in (["lock"], ["fetch"], ["dockerfile"]):
        started = time.monotonic()
        run = run_cli("--cache-dir", str(root / "cache"), *args, cwd=context)
        assert run.code == 0, (args, run.err)
        timings[args[0]] = time.monotonic() - started
    lock = tomllib.loads((context / "reprolock.lock").read_text())
    [target] = lock["targets"]
    pins = {p["name"]: p for p in target["packages"]}
    assert pins["hydra-core"]["version"].startswith("1.3.")
    assert {n for n, p in pins.items() if "sdist" in p} == {"antlr4-python3-runtime", "promise"}
    started = time.monotonic()
    ca = "/etc/ssl/certs/ca-certificates.crt"  # pip in the build reaches PyPI (a proxy's CA)
    dockerd.buildkit(
        context, "Dockerfile", "reprolock-live/sdists:1", "--secret", f"id=ca,src={ca}"
    )
    timings["build"] = time.monotonic() - started
    archive = root / "sdists.tar"
    dockerd.docker("save", "-o", str(archive), "reprolock-live/sdists:1")
    run = run_cli(
        "--format", "json", "verify", "image", f"docker-archive:{archive}", cwd=context
    )  # fmt: skip
    assert run.code == 0, run.out + run.err
    assert json.loads(run.out)["findings"] == []
    out = dockerd.docker(
        "run", "--rm", "--network", "none", "reprolock-live/sdists:1", "python", "-c",
        "import antlr4, hydra, promise; print(hydra.__version__, promise.__version__)",
    ).stdout.decode()  # fmt: skip
    assert out.split() == [pins["hydra-core"]["version"], "2.3"]
    SUMMARY.append(
        "live sdists (promise, hydra-core + antlr4): "
        + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
    )
