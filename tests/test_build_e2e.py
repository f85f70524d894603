"""`reprolock build` end to end with real parts: one lock for linux/amd64 and linux/arm64
(loopback index with real wheels, a signed loopback apt repository with a package for
each architecture, a base index in a real registry whose amd64 image is the debootstrap'd
bookworm and whose arm64 image is a small synthetic Debian-like rootfs: debootstrapping
arm64 would need emulation).

- two builds of each target, in other folders, with other umasks, TMPDIRs and caches, at
  other times, give the same manifest and config digests (amd64's second build is the
  registry output, pulled by digest by dockerd);
- the amd64 image, loaded with `docker load`, runs `python -c "import greeting, numpy, requests"`
  (numpy 2.1.3's real manylinux wheel) and the apt package's program; `verify image` is
  clean, and its digest matches the build record;
- the same lock built with `reprolock dockerfile` + BuildKit: `reprolock diff` shows no
  package or integrity difference; the remaining file-level differences, and the build
  times and sizes of both paths, are measured (printed in the CI log);
- a package whose postinst runs a program is refused with exit 3.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.aptrepo import AptRepo, Deb, GpgKey, needs_apt_tools, serve_repo
from tests.conftest import SUMMARY, run_cli
from tests.dockerd import BASE_TAG, Dockerd
from tests.ociregistry import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    Image,
    Link,
    Registry,
    htpasswd_file,
    python_files,
)
from tests.pyindex import serve
from tests.pypiwheels import requests_wheels
from tests.test_image_checks_docker import _numpy_wheel

pytestmark = [needs_apt_tools, pytest.mark.slow]

REPO = "reprolock/build-base"
APP = """import greeting
print(f"hello from greeting {greeting.__version__}")
"""
POSTINST = """#!/bin/sh
set -e
case "$1" in
    configure)
        update-alternatives --install /usr/bin/pager pager /usr/bin/needs-postinst 10
    ;;
esac
#DEBHELPER#
exit 0
"""


def _hello(arch: str, triplet: str) -> Deb:
    """A package with a library (under /lib: a merged /usr's link is followed), a program,
    a conffile and an ldconfig trigger (reproduced: the library is where the loader
    looks)."""
    return Deb(
        "hello-reprolock",
        "1.0",
        arch=arch,
        depends="libc6 (>= 2.36)",
        files=(
            (f"lib/{triplet}/libhello.so.1.0", b"\x7fELF not really a library\n"),
            ("usr/bin/hello-reprolock", b"#!/bin/sh\necho hello from apt\n"),
            ("etc/hello-reprolock.conf", b"greeting = hello\n"),
        ),
        links=((f"lib/{triplet}/libhello.so.1", "libhello.so.1.0"),),
        control_files=(("triggers", "activate-noawait ldconfig\n"),),
        conffiles=("/etc/hello-reprolock.conf",),
    )


def _arm64_base() -> Image:
    """A tiny Debian-like arm64 rootfs: what a lock reads of a base (os-release, dpkg's
    status with libc6, accounts, a CPython's landmarks) and a merged /usr."""
    status = (
        "Package: base-files\nStatus: install ok installed\nPriority: required\n"
        "Architecture: arm64\nVersion: 12.4+deb12u5\nDescription: base files\n\n"
        "Package: libc6\nStatus: install ok installed\nPriority: optional\n"
        "Architecture: arm64\nMulti-Arch: same\nVersion: 2.36-9+deb12u7\n"
        "Description: GNU C Library\n"
    )
    files: dict[str, Any] = {
        "bin": Link("usr/bin"),
        "lib": Link("usr/lib"),
        "sbin": Link("usr/sbin"),
        "etc/os-release": b'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian 12"\n',
        "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\n",
        "etc/group": b"root:x:0:\n",
        "etc/apt/sources.list": b"deb http://deb.debian.org/debian bookworm main\n",
        "var/lib/dpkg/status": status.encode(),
        "var/lib/dpkg/info/libc6:arm64.list": b"/.\n/usr\n/usr/lib\n",
        "usr/lib/aarch64-linux-gnu/libc.so.6": b"\x7fELF arm64 libc\n",
        **python_files("3.11.2", prefix="usr/local"),
    }
    return Image(architecture="arm64", variant="v8", layers=[files], docker=True)


def _push_base(dockerd: Dockerd, registry: Registry) -> str:
    """``<registry>/reprolock/build-base:bookworm``: a manifest list of the debootstrap'd
    amd64 image (pushed by docker) and the synthetic arm64 image."""
    amd64 = f"{registry.host}/{REPO}:bookworm-amd64"
    dockerd.docker("tag", BASE_TAG, amd64)
    dockerd.docker("push", amd64)
    reply = requests.get(
        f"{registry.url}/v2/{REPO}/manifests/bookworm-amd64",
        headers={"Accept": DOCKER_MANIFEST},
        timeout=30,
    )
    reply.raise_for_status()
    arm = registry.push_image(REPO, "bookworm-arm64", _arm64_base())
    arm_body = requests.get(
        f"{registry.url}/v2/{REPO}/manifests/{arm['manifest']}",
        headers={"Accept": DOCKER_MANIFEST},
        timeout=30,
    ).content
    index = {
        "schemaVersion": 2,
        "mediaType": DOCKER_LIST,
        "manifests": [
            {
                "mediaType": DOCKER_MANIFEST,
                "digest": reply.headers["Docker-Content-Digest"],
                "size": len(reply.content),
                "platform": {"architecture": "amd64", "os": "linux"},
            },
            {
                "mediaType": DOCKER_MANIFEST,
                "digest": arm["manifest"],
                "size": len(arm_body),
                "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
            },
        ],
    }
    registry.push_manifest(REPO, "bookworm", json.dumps(index).encode(), DOCKER_LIST)
    return f"{registry.host}/{REPO}:bookworm"


@dataclass
class World:
    project: Path
    registry: Registry
    cache: Path
    apt_url: str
    timings: dict[str, float] = field(default_factory=dict)
    builds: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def amd64(self) -> str:
        return "py3.11-amd64"

    @property
    def arm64(self) -> str:
        return "py3.11-arm64"


def _spec(base: str, index: str, apt_url: str, packages: str) -> str:
    return (
        '[environment]\npython = "3.11"\nplatforms = ["linux/amd64", "linux/arm64"]\n\n'
        f'[base]\nref = "{base}"\n\n'
        '[python]\nrequirements = ["greeting-cli", "requests", '
        "\"numpy; platform_machine == 'x86_64'\"]\n"
        f'[[python.index]]\nname = "e2e"\nurl = "{index}"\ndefault = true\n\n'
        f'[apt]\npackages = [{packages}]\nmirror = "{apt_url}"\nkeyrings = ["archive.gpg"]\n\n'
        '[image]\nworkdir = "/app"\nuser = "app"\ncopy = [["src", "/app/src"]]\n'
        'env = { PYTHONPATH = "/app/src" }\nlabels = { "org.example.team" = "ml" }\n'
        'expose = ["8000"]\ncmd = ["python", "-m", "app"]\n'
    )


@pytest.fixture(scope="module")
def world(
    dockerd: Dockerd, registry: Registry, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    root = tmp_path_factory.mktemp("build-e2e")
    start = time.monotonic()
    base = _push_base(dockerd, registry)
    key = GpgKey(root / "gnupg")
    repo = AptRepo(root / "repo")
    repo.add(_hello("amd64", "x86_64-linux-gnu"), _hello("arm64", "aarch64-linux-gnu"))
    repo.add(
        Deb(
            "needs-postinst",
            "1.0",
            arch="all",
            files=(("usr/bin/needs-postinst", b"#!/bin/sh\nexec cat\n"),),
            control_files=(("postinst", POSTINST),),
        )
    )
    repo.publish("bookworm", key, arches=("amd64", "arm64"))
    for index_server in serve():
        index = index_server.add_index("e2e", root / "index")
        index.wheel("greeting", "1.0")
        index.wheel(
            "greeting-cli",
            "2.0",
            requires=["greeting>=1"],
            extra_files={
                "greeting_cli-2.0.dist-info/entry_points.txt": (
                    b"[console_scripts]\ngreet = greeting:__version__\n"
                ),
            },
        )
        index.add(_numpy_wheel())
        for wheel in requests_wheels():
            index.add(wheel)
        project = root / "project"
        (project / "src" / "app").mkdir(parents=True)
        (project / "src" / "app" / "__main__.py").write_text(APP)
        (project / "src" / "app" / "__init__.py").write_text("")
        (project / "archive.gpg").write_bytes(key.public)
        with serve_repo(repo.root) as apt_url:
            (project / "reprolock.toml").write_text(
                _spec(base, index_server.url("e2e"), apt_url, '"hello-reprolock"')
            )
            cache = root / "cache"
            run = run_cli("--cache-dir", str(cache), "lock", cwd=project)
            assert run.code == 0, run.err
            world = World(project=project, registry=registry, cache=cache, apt_url=apt_url)
            world.timings["setup+lock"] = time.monotonic() - start
            yield world


def _reprolock(
    world: World,
    folder: Path,
    *args: str,
    umask: int = 0o022,
    tmp: Path | None = None,
    env_extra: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``reprolock ARGS`` in a separate process (its own umask and TMPDIR)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPROLOCK_")}
    env.update(env_extra or {})
    if tmp is not None:
        tmp.mkdir(parents=True, exist_ok=True)
        env["TMPDIR"] = str(tmp)
    return subprocess.run(
        [sys.executable, "-m", "reprolock", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=lambda: os.umask(umask),
    )


def _build(
    world: World,
    folder: Path,
    target: str,
    output: str,
    *,
    cache: Path | None = None,
    umask: int = 0o022,
    tmp: Path | None = None,
    offline: bool = False,
) -> dict[str, Any]:
    t = time.monotonic()
    run = _reprolock(
        world,
        folder,
        *(["--offline"] if offline else []),
        "--format",
        "json",
        "--cache-dir",
        str(cache or world.cache),
        "build",
        "--target",
        target,
        "--output",
        output,
        umask=umask,
        tmp=tmp,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    data: dict[str, Any] = json.loads(run.stdout)
    data["wall"] = time.monotonic() - t
    return data


def _copy_project(world: World, folder: Path) -> Path:
    """The spec, lock and sources in another folder: files written under umask 077 with
    other times (the build normalizes modes and times)."""
    old = os.umask(0o077)
    try:
        for name in ("reprolock.toml", "reprolock.lock", "archive.gpg"):
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes((world.project / name).read_bytes())
        for source in sorted((world.project / "src").rglob("*")):
            target = folder / source.relative_to(world.project)
            if source.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(source.read_bytes())
                os.utime(target, (1_234_567_890, 1_234_567_890))
    finally:
        os.umask(old)
    return folder


@dataclass
class Builds:
    world: World
    archive: Path  # amd64, docker-archive
    pushed: str  # amd64, the registry output's reference
    results: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def builds(world: World) -> Builds:
    """Each target built twice: in the project (default umask and TMPDIR, the shared
    cache) and in a copy (umask 077, another TMPDIR, an empty cache, a second later)."""
    other = _copy_project(world, world.project.parent / "elsewhere")
    archive = world.project.parent / "out" / "app.tar"
    pushed = f"{world.registry.host}/reprolock/built:amd64"
    results = {
        "amd64-a": _build(
            world, world.project, world.amd64, f"docker-archive:{archive}:reprolock-build/app:1"
        ),
        "arm64-a": _build(world, world.project, world.arm64, f"oci:{archive.parent}/arm64"),
    }
    time.sleep(1.1)
    for target, output in (
        ("amd64", f"registry:{pushed}"),
        ("arm64", f"oci-archive:{other}/arm64.tar"),
    ):
        results[f"{target}-b"] = _build(
            world,
            other,
            getattr(world, target),
            output,
            umask=0o077,
            tmp=other / "tmp",
            cache=other / "cache",
        )
    # again in the project, offline: the base's manifest, config and layers from the cache
    results["amd64-warm"] = _build(
        world, world.project, world.amd64, f"oci-archive:{archive.parent}/warm.tar", offline=True
    )
    world.timings["reprolock build amd64"] = results["amd64-a"]["wall"]
    return Builds(world=world, archive=archive, pushed=pushed, results=results)


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_same_lock_same_digests(builds: Builds, arch: str) -> None:
    a, b = builds.results[f"{arch}-a"], builds.results[f"{arch}-b"]
    assert a["platform"] == f"linux/{arch}"
    assert (a["manifest-digest"], a["config-digest"]) == (b["manifest-digest"], b["config-digest"])
    assert [layer["digest"] for layer in a["layers"]] == [layer["digest"] for layer in b["layers"]]
    assert [layer["layer"] for layer in a["layers"]][-3:] == ["system", "python", "app"]
    warm = builds.results.get(f"{arch}-warm")
    if warm is not None:
        assert warm["manifest-digest"] == a["manifest-digest"]
        SUMMARY.append(f"reprolock build {arch} again, offline, cache warm: {warm['wall']:.1f}s")
    SUMMARY.append(
        f"reprolock build {arch}: manifest {a['manifest-digest']} config {a['config-digest']} "
        f"in both builds ({a['wall']:.1f}s and {b['wall']:.1f}s)"
    )


def test_arm64_image_is_arm64_through_and_through(builds: Builds) -> None:
    """Assembled on amd64 without emulation: the config says arm64, the apt layer holds
    the arm64 package, unpacked through the merged /usr."""
    from reprolock.image.oci_layout import open_oci_dir
    from reprolock.image.read import read_image
    from reprolock.model import Platform

    layout = open_oci_dir(
        builds.archive.parent / "arm64", tag=None, platform=Platform.parse("arm64")
    )
    try:
        read = read_image(
            layout, want_content=lambda p: "dpkg/status" in p, want_hash=lambda _: False
        )
    finally:
        layout.close()
    assert read.config is not None
    assert (read.config.architecture, read.config.variant) == ("arm64", "v8")
    assert read.view.exists("usr/lib/aarch64-linux-gnu/libhello.so.1.0")
    assert read.view.node("lib", follow=False).entry.kind == "symlink"  # type: ignore[union-attr]
    status = (read.view.read("var/lib/dpkg/status") or b"").decode()
    assert "Package: hello-reprolock\nStatus: install ok installed" in status
    assert "Architecture: arm64" in status.split("Package: hello-reprolock")[1]


def test_loaded_image_runs_and_verifies(builds: Builds, dockerd: Dockerd) -> None:
    loaded = dockerd.docker("load", "-i", str(builds.archive)).stdout.decode()
    assert "reprolock-build/app:1" in loaded
    tag = "reprolock-build/app:1"
    image_id = dockerd.docker("image", "inspect", "-f", "{{.Id}}", tag).stdout.decode().strip()
    assert image_id == builds.results["amd64-a"]["config-digest"]
    run = dockerd.docker(
        "run",
        "--rm",
        "--network",
        "none",
        tag,
        "python",
        "-c",
        "import greeting, numpy, requests; print('ok', numpy.__version__, requests.__version__)",
    )
    assert run.stdout.decode().split() == ["ok", "2.1.3", "2.32.3"]
    assert dockerd.docker("run", "--rm", "--network", "none", tag).stdout.decode().strip() == (
        "hello from greeting 1.0"
    )
    for command, expected in (
        (["hello-reprolock"], "hello from apt"),
        (["id", "-u"], "10001"),
        (["dpkg-query", "-W", "-f", "${Version}", "hello-reprolock"], "1.0"),
        (["greet", "--help"], ""),
    ):
        done = dockerd.docker(
            "run", "--rm", "--entrypoint", command[0], tag, *command[1:], check=False
        )
        if expected:
            assert done.stdout.decode().strip() == expected, (command, done.stderr)
    report = _verify(builds, f"docker-archive:{builds.archive}", "--full")
    assert report["exit"] == 0 and report["findings"] == [], report


def _verify(builds: Builds, image: str, *args: str) -> dict[str, Any]:
    run = run_cli(
        "--format",
        "json",
        "verify",
        "image",
        image,
        "--target",
        builds.world.amd64,
        *args,
        cwd=builds.world.project,
    )
    data: dict[str, Any] = json.loads(run.out) if run.out.strip() else {"error": run.err}
    data["exit"] = run.code
    return data


def test_registry_output_pulls_by_digest(builds: Builds, dockerd: Dockerd) -> None:
    digest = builds.results["amd64-b"]["manifest-digest"]
    name = builds.pushed.rsplit(":", 1)[0]
    dockerd.docker("pull", f"{name}@{digest}")
    image_id = (
        dockerd.docker("image", "inspect", "-f", "{{.Id}}", f"{name}@{digest}")
        .stdout.decode()
        .strip()
    )
    assert image_id == builds.results["amd64-a"]["config-digest"]


def test_registry_output_with_a_login(
    builds: Builds, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A push to a registry that wants a login takes it from the docker config, as pulls
    do; the image pushed there is the same one, byte for byte. A wrong password is refused
    with the registry named, and nothing is recorded as built."""
    import base64

    world = builds.world
    folder = tmp_path_factory.mktemp("authpush")
    secured = Registry(folder / "reg", htpasswd=htpasswd_file(folder, {"pusher": "push-secret"}))
    try:
        config = folder / "docker"
        config.mkdir()

        def login(password: str) -> dict[str, str]:
            auth = base64.b64encode(f"pusher:{password}".encode()).decode()
            (config / "config.json").write_text(
                json.dumps({"auths": {secured.host: {"auth": auth}}})
            )
            return {"DOCKER_CONFIG": str(config)}

        record = world.project / "reprolock.build.toml"
        before = record.read_bytes()
        output = f"registry:{secured.host}/team/app:auth"
        wrong = _reprolock(
            world, world.project, "--cache-dir", str(world.cache), "build", "--target",
            world.amd64, "--output", output, env_extra=login("not-the-secret"),
        )  # fmt: skip
        assert wrong.returncode == 4, wrong.stderr[-2000:]
        assert secured.host in wrong.stderr and "login" in wrong.stderr
        assert "Traceback" not in wrong.stderr
        assert record.read_bytes() == before
        right = _reprolock(
            world, world.project, "--format", "json", "--cache-dir", str(world.cache), "build",
            "--target", world.amd64, "--output", output, env_extra=login("push-secret"),
        )  # fmt: skip
        assert right.returncode == 0, right.stderr[-3000:]
        pushed = json.loads(right.stdout)
        assert pushed["manifest-digest"] == builds.results["amd64-b"]["manifest-digest"]
        answer = secured.session.get(
            f"{secured.url}/v2/team/app/manifests/auth",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
            timeout=10,
        )
        assert answer.status_code == 200
        assert answer.headers["Docker-Content-Digest"] == pushed["manifest-digest"]
    finally:
        secured.stop()


def _files(archive: Path, base_layers: int) -> tuple[dict[str, tuple[str, int, str]], str]:
    """What the layers above the base leave, path → (kind, mode, link target or sha256),
    and each layer's size unpacked (MB), from the base up: one read of the image."""
    from reprolock.image.docker_archive import DockerArchive
    from reprolock.image.read import read_image

    image = DockerArchive.from_path(archive)
    try:
        read = read_image(image, want_content=lambda _: False, want_hash=lambda _: True)
    finally:
        image.close()
    files: dict[str, tuple[str, int, str]] = {
        node.entry.path: (
            str(node.entry.kind),
            node.entry.mode & 0o7777,
            node.entry.link or node.entry.sha256 or "",
        )
        for node in read.view.walk()
        if node.layer >= base_layers
    }
    sizes = " + ".join(f"{layer.uncompressed_size / 1e6:.1f}" for layer in read.layers)
    return files, sizes + " MB"


def _summary(paths: list[str]) -> str:
    """Paths grouped by their first three components, with counts."""
    groups: dict[str, int] = {}
    for path in paths:
        key = "/".join(path.split("/")[:3])
        groups[key] = groups.get(key, 0) + 1
    return ", ".join(f"/{k} ({n})" for k, n in sorted(groups.items(), key=lambda i: -i[1])[:8])


def test_dockerfile_and_build_images_differ_in_no_package(builds: Builds, dockerd: Dockerd) -> None:
    world = builds.world
    run = run_cli("--cache-dir", str(world.cache), "dockerfile", cwd=world.project)
    assert run.code == 0, run.err
    t = time.monotonic()
    dockerd.buildkit(world.project, f"Dockerfile.{world.amd64}", "reprolock-build/dockerfile:1")
    seconds = time.monotonic() - t
    archive = world.project.parent / "out" / "dockerfile.tar"
    dockerd.docker("save", "-o", str(archive), "reprolock-build/dockerfile:1")
    diff = run_cli(
        "--format",
        "json",
        "diff",
        f"docker-archive:{archive}",
        f"docker-archive:{builds.archive}",
        cwd=world.project,
    )
    assert diff.code == 0, diff.err
    changes = json.loads(diff.out)["changes"]
    assert changes == [], changes
    report = _verify(builds, f"docker-archive:{archive}")  # no record matches: the full check
    assert report["exit"] == 0 and report["findings"] == [], report
    # what differs file by file (reported, not judged)
    lock = tomllib.loads((world.project / "reprolock.lock").read_text())
    [target] = [t for t in lock["targets"] if t["id"] == world.amd64]
    base_layers = len(target["base"]["diff-ids"])
    (ours, our_sizes), (theirs, their_sizes) = (
        _files(builds.archive, base_layers),
        _files(archive, base_layers),
    )
    only_build = sorted(set(ours) - set(theirs))
    only_dockerfile = sorted(set(theirs) - set(ours))
    differ = sorted(p for p in set(ours) & set(theirs) if ours[p] != theirs[p])
    sizes = {
        tag: int(dockerd.docker("image", "inspect", "-f", "{{.Size}}", tag).stdout)
        for tag in ("reprolock-build/app:1", "reprolock-build/dockerfile:1")
    }
    SUMMARY.append(
        f"same lock, amd64: reprolock build {builds.results['amd64-a']['wall']:.1f}s "
        f"(compressed {builds.results['amd64-a']['size'] / 1e6:.1f} MB, image "
        f"{sizes['reprolock-build/app:1'] / 1e6:.1f} MB); dockerfile + BuildKit {seconds:.1f}s "
        f"(image {sizes['reprolock-build/dockerfile:1'] / 1e6:.1f} MB)"
    )
    SUMMARY.append(f"layers unpacked: reprolock build {our_sizes}; Dockerfile {their_sizes}")
    SUMMARY.append(
        f"file-level differences above the base: {len(only_build)} only in the build image "
        f"[{_summary(only_build)}], {len(only_dockerfile)} only in the Dockerfile image "
        f"[{_summary(only_dockerfile)}], {len(differ)} differ [{_summary(differ)}]"
    )


def test_verify_by_the_recorded_digest(builds: Builds) -> None:
    """The build's record proves the image in milliseconds; another image fails --digest."""
    world = builds.world
    record = (world.project / "reprolock.build.toml").read_text()
    assert builds.results["amd64-a"]["config-digest"] in record
    t = time.monotonic()
    run = run_cli(
        "verify",
        "image",
        f"docker-archive:{builds.archive}",
        "--target",
        world.amd64,
        cwd=world.project,
    )
    seconds = time.monotonic() - t
    assert run.code == 0, run.err
    assert "the image reprolock build made from this lock for py3.11-amd64" in run.out
    registry = _verify(builds, f"registry:{builds.pushed}", "--digest")
    assert registry["exit"] == 0 and registry["findings"] == [], registry
    other = world.project.parent / "out" / "dockerfile.tar"
    if other.exists():  # built by the Dockerfile test
        report = _verify(builds, f"docker-archive:{other}", "--digest")
        assert report["exit"] == 1
        assert [f["kind"] for f in report["findings"]] == ["build-digest"]
    SUMMARY.append(f"verify image by its recorded digest: {seconds * 1000:.0f} ms")


def test_unreproducible_postinst_is_refused(world: World) -> None:
    folder = world.project.parent / "postinst"
    folder.mkdir()
    (folder / "archive.gpg").write_bytes((world.project / "archive.gpg").read_bytes())
    spec = (world.project / "reprolock.toml").read_text()
    spec = spec.replace('packages = ["hello-reprolock"]', 'packages = ["needs-postinst"]')
    spec = spec.replace('platforms = ["linux/amd64", "linux/arm64"]', 'platforms = ["linux/amd64"]')
    (folder / "reprolock.toml").write_text(spec)
    (folder / "src").mkdir()
    run = run_cli("--cache-dir", str(world.cache), "lock", cwd=folder)
    assert run.code == 0, run.err
    run = run_cli("--cache-dir", str(world.cache), "build", cwd=folder)
    assert run.code == 3, run.err
    assert run.err.startswith(
        "error: reprolock build cannot reproduce the installation of 1 apt package: "
        "needs-postinst 1.0."
    ), run.err
    assert (
        "its postinst runs `update-alternatives --install /usr/bin/pager pager "
        "/usr/bin/needs-postinst 10` (line 5)" in run.err
    ), run.err
    assert "reprolock dockerfile" in run.err
    assert not (folder / ".reprolock" / "py3.11-amd64" / "image.tar").exists()
