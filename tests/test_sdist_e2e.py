"""End to end with sdist-only dependencies (issue 18's promise/basicsr and hydra-core's
antlr4-python3-runtime, as loopback stand-ins): lock (the metadata built by the real
backends) → fetch (the wheels built with the locked build environment) → dockerfile → a
real BuildKit build by dockerd → verify image clean, and the packages import in the image.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.aptrepo import needs_apt_tools
from tests.conftest import Run, run_cli
from tests.dockerd import BASE_TAG, Dockerd
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


def test_air_gapped_build_from_the_wheelhouse(cli: Cli, built: Built, dockerd: Dockerd) -> None:
    run = cli("dockerfile", "--wheelhouse", cwd=built.context)
    assert run.code == 0, run.err
    dockerd.buildkit(built.context, "Dockerfile", "reprolock-e2e/sdists:air", network="none")
    out = dockerd.docker("run", "--rm", "--network", "none", "reprolock-e2e/sdists:air")
    assert out.stdout.decode().split() == ["ok", "2.3", "4.9.3", "1.4.2"]
