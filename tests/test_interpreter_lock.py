"""`reprolock lock`, `check` and `explain` choosing the interpreter and the base, against real
parts on loopback (no docker): bases pushed to Debian's docker-registry, a loopback index,
a signed loopback apt repository, a python-build-standalone release folder."""

from __future__ import annotations

import hashlib
import tomllib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.aptrepo import AptRepo, Deb, GpgKey, needs_apt_tools, serve_repo
from tests.conftest import Run
from tests.ociregistry import Image, LayerFiles, Registry, python_files
from tests.pyindex import IndexServer, build_wheel, serve

pytestmark = needs_apt_tools

LockCli = Callable[..., Run]
RELEASE = "20241016"
ASSET = f"cpython-3.11.10+{RELEASE}-x86_64-unknown-linux-gnu-install_only.tar.gz"
TARBALL = b"not really a tarball: the lock only pins it"


def _status(*debs: Deb) -> bytes:
    return "\n".join(d.status() for d in debs).encode()


LIBC_236 = Deb("libc6", "2.36-9+deb12u13", multi_arch="same", priority="required")
LIBC_235 = Deb("libc6", "2.35-0ubuntu3.8", multi_arch="same", priority="required")


def _base(*layers: LayerFiles, env: dict[str, str] | None = None) -> Image:
    return Image(architecture="amd64", layers=list(layers), env=env or {})


def _debian(libc: Deb, key: bytes, *, suite: str = "bookworm", os: str = "debian") -> LayerFiles:
    return {
        "etc/os-release": f"ID={os}\nVERSION_CODENAME={suite}\n".encode(),
        "var/lib/dpkg/status": _status(libc),
        "etc/apt/sources.list": f"deb http://deb.debian.org/debian {suite} main\n".encode(),
        "etc/apt/trusted.gpg.d/archive.gpg": key,
        "etc/passwd": b"root:x:0:0:root:/root:/bin/bash\n",
    }


@dataclass
class World:
    registry: Registry
    index: IndexServer
    apt_url: str
    key: GpgKey
    standalone_url: str
    repo: str  # a unique registry namespace for this module's images

    def ref(self, name: str) -> str:
        return f"{self.registry.host}/{self.repo}/{name}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, registry: Registry) -> Iterator[World]:
    root = tmp_path_factory.mktemp("interp")
    key = GpgKey(root / "gnupg")
    repo = AptRepo(root / "repo")
    repo.add(
        Deb("python3.11-minimal", "3.11.2-6+deb12u6", depends="libc6 (>= 2.36)"),
        Deb("libpython3.11-stdlib", "3.11.2-6+deb12u6", depends="libc6 (>= 2.36)"),
        Deb(
            "python3.11",
            "3.11.2-6+deb12u6",
            depends="python3.11-minimal (= 3.11.2-6+deb12u6), libpython3.11-stdlib",
        ),
        Deb("python3-pip-whl", "23.0.1+dfsg-1"),
        Deb("python3.11-venv", "3.11.2-6+deb12u6", depends="python3.11, python3-pip-whl"),
    )
    repo.publish("bookworm", key)
    # jammy's python3.11 is a release candidate
    repo.add(
        Deb("python3.11", "3.11.0~rc1-1~22.04", depends="libc6 (>= 2.35)"),
        Deb("python3.11-venv", "3.11.0~rc1-1~22.04", depends="python3.11"),
        component="universe",
    )
    repo.publish("jammy", key, components=("universe",))
    pbs = root / "pbs" / RELEASE
    pbs.mkdir(parents=True)
    (pbs / ASSET).write_bytes(TARBALL)
    (pbs / "SHA256SUMS").write_text(f"{hashlib.sha256(TARBALL).hexdigest()}  {ASSET}\n")
    namespace = f"interp{uuid.uuid4().hex[:6]}"
    for server in serve():
        index = server.add_index("local", root / "index")
        index.wheel("app", "1.0")
        wheels = root / "wheels"
        wheels.mkdir()
        index.add(build_wheel(wheels, "fast", "2.0", tag="cp311-cp311-manylinux_2_36_x86_64"))
        index.add(build_wheel(wheels, "fast", "1.0", tag="cp311-cp311-manylinux_2_35_x86_64"))
        index.add(build_wheel(wheels, "fast", "1.0", tag="cp311-cp311-manylinux_2_36_x86_64"))
        index.add(
            build_wheel(
                wheels,
                "nvidia-cuda-runtime-cu12",
                "12.4.127",
                tag="py3-none-manylinux2014_x86_64",
                payload=200_000,
            )
        )
        with serve_repo(repo.root) as apt_url, serve_repo(root / "pbs") as standalone_url:
            yield World(
                registry=registry,
                index=server,
                apt_url=apt_url,
                key=key,
                standalone_url=standalone_url,
                repo=namespace,
            )


def _spec(
    tmp_path: Path,
    world: World,
    base: str,
    *,
    requirements: str = '"app"',
    python: str = "",
    extra: str = "",
) -> None:
    (tmp_path / "archive.gpg").write_bytes(world.key.public)
    (tmp_path / "reprolock.toml").write_text(
        '[environment]\npython = "3.11"\n\n'
        f"{base}\n\n"
        f"[python]\nrequirements = [{requirements}]\n{python}\n"
        f'[[python.index]]\nname = "local"\nurl = "{world.index.url("local")}"\ndefault = true\n\n'
        f'[apt]\nmirror = "{world.apt_url}"\nkeyrings = ["archive.gpg"]\n\n'
        f'[registry]\nmirrors = {{ "docker.io" = "{world.registry.host}" }}\n'
        f"{extra}"
    )


def _target(tmp_path: Path) -> dict[str, Any]:
    lock = tomllib.loads((tmp_path / "reprolock.lock").read_text())
    target: dict[str, Any] = lock["targets"][0]
    return target


def _pins(tmp_path: Path) -> dict[str, str]:
    return {p["name"]: p["wheels"][0]["filename"] for p in _target(tmp_path)["packages"]}


def test_a_base_with_only_python_310_is_refused_under_interpreter_base(
    lock_cli: LockCli, tmp_path: Path, world: World
) -> None:
    ref = world.ref("py310:1")
    world.registry.push_image(
        f"{world.repo}/py310",
        "1",
        _base(_debian(LIBC_235, world.key.public), python_files("3.10.12", prefix="usr")),
    )
    _spec(tmp_path, world, f'[base]\nref = "{ref}"', python='interpreter = "base"')
    run = lock_cli("lock")
    assert run.code == 3, run.err
    assert run.err == (
        f"error: py3.11-amd64: the base {ref} has no usable Python 3.11 under [python] "
        'interpreter = "base" (it has Python 3.10.12 (/usr/bin/python3.10)).\n'
        "  base: the base has no Python 3.11 (it has Python 3.10.12 (/usr/bin/python3.10))\n"
        'Nearest fixes: another base with Python 3.11: [base] image = "python" (the official '
        'python:3.11-slim image) or a ref that has it; interpreter = "standalone" with '
        '[python.standalone] release = "…" (a relocatable python-build-standalone build); '
        'interpreter = "auto" or "apt" (the distribution\'s package); another Python: '
        'python = "3.10" (what the base has).\n'
    )
    assert not (tmp_path / "reprolock.lock").exists()


def test_standalone_is_pinned_by_url_and_sha256_and_check_refuses_a_policy_change(
    lock_cli: LockCli, tmp_path: Path, world: World
) -> None:
    ref = world.ref("py310:2")
    world.registry.push_image(
        f"{world.repo}/py310",
        "2",
        _base(
            {**_debian(LIBC_236, world.key.public), "etc/apt/sources.list": b""},
            python_files("3.10.12", prefix="usr"),
        ),
    )
    standalone = f'[python.standalone]\nrelease = "{RELEASE}"\nurl = "{world.standalone_url}"\n'
    _spec(tmp_path, world, f'[base]\nref = "{ref}"', python=standalone)
    run = lock_cli("lock")
    assert run.code == 0, run.err
    target = _target(tmp_path)
    assert target["python"] == "3.11.10"
    assert target["interpreter"] == {
        "source": "standalone",
        "path": "/opt/python/bin/python3.11",
        "version": "3.11.10",
        "url": f"{world.standalone_url}/{RELEASE}/{ASSET.replace('+', '%2B')}",
        "sha256": hashlib.sha256(TARBALL).hexdigest(),
    }
    assert (
        "py3.11-amd64: Python 3.11.10 from standalone (/opt/python/bin/python3.11); base: the "
        "base has no Python 3.11 (it has Python 3.10.12 (/usr/bin/python3.10)); apt: the base "
        "image has no apt sources (/etc/apt/sources.list or sources.list.d)"
    ) in run.err
    # the lock's facts say why: check refuses the spec once it asks for the base's own
    spec = (tmp_path / "reprolock.toml").read_text()
    (tmp_path / "reprolock.toml").write_text(
        spec.replace("[python.standalone]", 'interpreter = "base"\n[python.standalone]')
    )
    run = lock_cli("check")
    assert run.code == 3, run.err
    assert 'has no usable Python 3.11 under [python] interpreter = "base"' in run.err
    # fetch puts the tarball in the build context, sha256-checked
    (tmp_path / "reprolock.toml").write_text(spec)
    run = lock_cli("fetch")
    assert run.code == 0, run.err
    here = tmp_path / ".reprolock" / "py3.11-amd64" / "python"
    assert (here / ASSET).read_bytes() == TARBALL
    assert (here / "SHA256SUMS").read_text() == (
        f"{hashlib.sha256(TARBALL).hexdigest()}  /tmp/reprolock-python/{ASSET}\n"
    )


def test_wheel_tags_follow_the_base_glibc(lock_cli: LockCli, tmp_path: Path, world: World) -> None:
    for tag, libc in (("jammy", LIBC_235), ("bookworm", LIBC_236)):
        world.registry.push_image(
            f"{world.repo}/glibc",
            tag,
            _base(_debian(libc, world.key.public), python_files("3.11.9", prefix="usr/local")),
        )
    _spec(tmp_path, world, f'[base]\nref = "{world.ref("glibc:jammy")}"', requirements='"fast"')
    run = lock_cli("lock")
    assert run.code == 0, run.err
    # glibc 2.35: fast 2.0 has only a manylinux_2_36 wheel; 1.0's manylinux_2_35 one is taken
    assert _pins(tmp_path) == {"fast": "fast-1.0-cp311-cp311-manylinux_2_35_x86_64.whl"}
    facts = _target(tmp_path)["base"]["facts"]
    assert (facts["libc"], facts["libc-version"]) == ("glibc", "2.35")
    run = lock_cli("explain", "fast")
    assert run.code == 0, run.err
    assert "CPython 3.11.9 on linux/amd64 (glibc 2.35)" in run.out
    assert (
        "    2.0: no wheel for CPython 3.11.9 on linux/amd64 (glibc 2.35); has "
        "fast-2.0-cp311-cp311-manylinux_2_36_x86_64.whl\n"
    ) in run.out
    _spec(tmp_path, world, f'[base]\nref = "{world.ref("glibc:bookworm")}"', requirements='"fast"')
    run = lock_cli("lock", "-U")
    assert run.code == 0, run.err
    assert _pins(tmp_path) == {"fast": "fast-2.0-cp311-cp311-manylinux_2_36_x86_64.whl"}


def test_the_distribution_interpreter_joins_the_apt_closure(
    lock_cli: LockCli, tmp_path: Path, world: World
) -> None:
    world.registry.push_image(
        f"{world.repo}/minbase", "bookworm", _base(_debian(LIBC_236, world.key.public))
    )
    _spec(tmp_path, world, f'[base]\nref = "{world.ref("minbase:bookworm")}"')
    run = lock_cli("lock")
    assert run.code == 0, run.err
    target = _target(tmp_path)
    assert target["interpreter"] == {
        "source": "apt",
        "path": "/usr/bin/python3.11",
        "version": "3.11.2",
        "packages": ["python3.11", "python3.11-venv"],
    }
    assert target["python"] == "3.11.2"
    assert {p["name"]: p["version"] for p in target["apt"]} == {
        "libpython3.11-stdlib": "3.11.2-6+deb12u6",
        "python3-pip-whl": "23.0.1+dfsg-1",
        "python3.11": "3.11.2-6+deb12u6",
        "python3.11-minimal": "3.11.2-6+deb12u6",
        "python3.11-venv": "3.11.2-6+deb12u6",
    }
    run = lock_cli("explain", "apt", "python3-pip-whl")
    assert run.code == 0, run.err
    assert "python3.11-venv" in run.out
    run = lock_cli("dockerfile")
    assert run.code == 0, run.err
    dockerfile = (tmp_path / "Dockerfile").read_text()
    assert "/tmp/reprolock-debs/python3.11_3.11.2-6+deb12u6_amd64.deb" in dockerfile
    assert "RUN /usr/bin/python3.11 -c 'import platform, sys;" in dockerfile


def test_a_release_candidate_is_refused_unless_asked(
    lock_cli: LockCli, tmp_path: Path, world: World
) -> None:
    world.registry.push_image(
        f"{world.repo}/ubuntu",
        "jammy",
        _base(
            {
                **_debian(LIBC_235, world.key.public, suite="jammy", os="ubuntu"),
                "etc/apt/sources.list": b"deb http://archive.ubuntu.com/ubuntu jammy universe\n",
            }
        ),
    )
    base = f'[base]\nref = "{world.ref("ubuntu:jammy")}"'
    _spec(tmp_path, world, base, python='interpreter = "apt"')
    run = lock_cli("lock")
    assert run.code == 3, run.err
    assert (
        "apt: python3.11 3.11.0~rc1-1~22.04 is a pre-release (CPython 3.11.0rc1); [python] "
        "interpreter-prerelease = true accepts it"
    ) in run.err
    _spec(tmp_path, world, base, python='interpreter = "apt"\ninterpreter-prerelease = true')
    run = lock_cli("lock")
    assert run.code == 0, run.err
    assert _target(tmp_path)["python"] == "3.11.0rc1"


def test_auto_chooses_the_python_image_and_explain_shows_the_cuda_copy_saved(
    lock_cli: LockCli, tmp_path: Path, world: World
) -> None:
    slim = _base(
        _debian(LIBC_236, world.key.public),
        python_files("3.11.9", patchlevel=False),
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "PYTHON_VERSION": "3.11.9"},
    )
    world.registry.push_image("library/python", "3.11-slim-bookworm", slim)
    blob = hashlib.sha512().digest() * 4096
    cuda_layer: LayerFiles = {"usr/local/cuda/lib64/libcudart.so.12": blob}
    cuda = _base({"etc/os-release": b"ID=ubuntu\n"}, cuda_layer, env={"CUDA_VERSION": "12.4.1"})
    pushed = world.registry.push_image("nvidia/cuda", "12.4.1-base-ubuntu22.04", cuda)
    assert pushed["manifest"]
    _spec(
        tmp_path,
        world,
        '[base]\nimage = "auto"\nos = "bookworm"',
        requirements='"nvidia-cuda-runtime-cu12==12.4.127"',
        extra='[gpu]\ndevices = ["A100"]\ndriver = "550.54.15"\ncuda = "12.4"\n',
    )
    run = lock_cli("lock")
    assert run.code == 0, run.err
    target = _target(tmp_path)
    base = target["base"]
    assert base["ref"] == "python:3.11-slim-bookworm"
    choice = base["choice"]
    assert choice["image"] == "auto"
    assert choice["instead-of"] == "nvidia/cuda:12.4.1-base-ubuntu22.04"
    manifest = world.registry.session.get(
        f"{world.registry.url}/v2/nvidia/cuda/manifests/12.4.1-base-ubuntu22.04",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    ).json()
    assert choice["instead-of-bytes"] == manifest["layers"][1]["size"]
    assert choice["cuda-wheel-bytes"] > 200_000
    assert target["interpreter"]["source"] == "base" and target["python"] == "3.11.9"
    assert target["cuda"]["toolkit"].startswith("12.4")
    run = lock_cli("explain")
    assert run.code == 0, run.err
    mb = f"{manifest['layers'][1]['size'] / 1e6:.1f} MB"
    assert "  base: python:3.11-slim-bookworm (" in run.out
    assert (
        '    chosen for [base] image = "auto": no framework loads CUDA from the system (CUDA, '
        "if any, comes from wheels)"
    ) in run.out
    assert (
        f"    instead of nvidia/cuda:12.4.1-base-ubuntu22.04: saves {mb}, the CUDA copy its "
        "layers above the OS would add"
    ) in run.out
    assert "  interpreter: Python 3.11.9 from base (/usr/local/bin/python3.11)" in run.out
    run = lock_cli("dockerfile")
    assert run.code == 0, run.err
    dockerfile = (tmp_path / "Dockerfile").read_text()
    assert 'NVIDIA_VISIBLE_DEVICES="all"' in dockerfile
    assert 'PATH="/opt/venv/bin:/usr/local/bin:/usr/bin:/bin"' in dockerfile


def test_check_judges_only_the_base_the_spec_still_names(
    lock_cli: LockCli, tmp_path: Path, world: World
) -> None:
    """A lock on python:3.11-slim-bookworm (image = "auto") and a spec now for Python 3.12:
    the chosen base changes, so the lock is stale (exit 1), not unsatisfiable."""
    slim = _base(
        _debian(LIBC_236, world.key.public),
        python_files("3.11.9", patchlevel=False),
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "PYTHON_VERSION": "3.11.9"},
    )
    world.registry.push_image("library/python", "3.11-slim-bookworm", slim)
    _spec(tmp_path, world, '[base]\nimage = "auto"\nos = "bookworm"')
    assert lock_cli("lock").code == 0
    spec = (tmp_path / "reprolock.toml").read_text()
    (tmp_path / "reprolock.toml").write_text(spec.replace('python = "3.11"', 'python = "3.12"'))
    run = lock_cli("check")
    assert run.code == 1, run.err
    assert "is stale" in run.err
