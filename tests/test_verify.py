"""`reprolock verify image` against real images built from layers, and its report formats."""

from __future__ import annotations

import base64
import hashlib
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema

from tests.conftest import Run
from tests.imagefiles import write_docker_archive
from tests.ociregistry import Image, LayerFiles, Registry, python_files
from tests.pyindex import IndexServer

Cli = Callable[..., Run]
SP = "opt/venv/lib/python3.11/site-packages"
BASE_LAYER: LayerFiles = {
    "etc/os-release": b"ID=debian\nVERSION_ID=12\n",
    "var/lib/dpkg/status": b"Package: libc6\nStatus: install ok installed\nArchitecture: amd64\n"
    b"Version: 2.36-9\n",
    **python_files(),
}


DRIFT_LABELS = {
    "dev.reprolock.target": "py3.12-arm64",
    "dev.reprolock.lock-digest": "sha256:" + "0" * 64,
    "org.opencontainers.image.base.digest": "sha256:" + "e" * 64,
}


def _hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _dist(
    name: str, version: str, code: bytes = b"X = 1\n", tamper: bool = False, folder: str = SP
) -> LayerFiles:
    info = f"{name}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n".encode()
    return {
        f"{folder}/{name}/__init__.py": b"tampered\n" if tamper else code,
        f"{folder}/{info}/METADATA": metadata,
        f"{folder}/{info}/RECORD": (
            f"{name}/__init__.py,{_hash(code)},{len(code)}\n{info}/RECORD,,\n"
        ).encode(),
    }


def _project(cli: Cli, tmp_path: Path, server: IndexServer, registry: Registry) -> Path:
    """A lock with a base pinned from the registry and alpha + beta from the index."""
    registry.push_image("verify/base", "1", Image(layers=[BASE_LAYER]))
    idx = server.add_index("local", tmp_path / "local")
    idx.wheel("alpha", "1.0")
    idx.wheel("beta", "2.0")
    (tmp_path / "reprolock.toml").write_text(
        f'[environment]\npython = "3.11"\n[base]\nref = "{registry.host}/verify/base:1"\n'
        '[python]\nrequirements = ["alpha", "beta"]\n'
        f'[[python.index]]\nname = "local"\nurl = "{server.url("local")}"\ndefault = true\n'
        '[image]\nuser = "app"\n'
    )
    run = cli("--cache-dir", str(tmp_path / "cache"), "lock", cwd=tmp_path)
    assert run.code == 0, run.err
    return tmp_path


def _built(
    tmp_path: Path,
    name: str,
    *extra: LayerFiles,
    user: str = "app",
    labels: dict[str, str] | None = None,
    venv_cfg: bytes = b"home = /usr/local/bin\nversion = 3.11.2\n",
) -> str:
    app: LayerFiles = {
        "opt/venv/pyvenv.cfg": venv_cfg,
        **_dist("alpha", "1.0"),
        **_dist("beta", "2.0"),
    }
    image = Image(layers=[BASE_LAYER, app, *extra], user=user, labels=labels or {})
    write_docker_archive(tmp_path / f"{name}.tar", image)
    return f"docker-archive:{tmp_path / name}.tar"


SCHEMA = json.loads(
    (Path(__file__).parent.parent / "schemas" / "verify-report.schema.json").read_text()
)


def _verify(cli: Cli, folder: Path, image: str, *args: str) -> tuple[int, dict[str, Any]]:
    run = cli("--format", "json", "verify", "image", image, *args, cwd=folder)
    assert run.code in (0, 1), run.err
    data: dict[str, Any] = json.loads(run.out)
    jsonschema.validate(data, SCHEMA)
    return run.code, data


def _kinds(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(f["kind"], f["subject"], f["severity"]) for f in data["findings"]]


def test_clean_image_passes_and_every_drift_is_found(
    cli: Cli, tmp_path: Path, index_server: IndexServer, registry: Registry
) -> None:
    folder = _project(cli, tmp_path, index_server, registry)
    code, data = _verify(cli, folder, _built(tmp_path, "clean"))
    assert (code, data["findings"], data["ok"]) == (0, [], True)

    drift: LayerFiles = {
        **_dist("beta", "2.1"),  # pip install -U beta
        f"{SP}/.wh.beta-2.0.dist-info": b"",
        **_dist("extra", "0.1"),  # not in the lock
        "var/lib/dpkg/status": BASE_LAYER["var/lib/dpkg/status"]  # type: ignore[operator]
        + b"\nPackage: curl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 7.88\n",
        f"{SP}/alpha/__init__.py": b"edited in place\n",
        **_dist("alpha", "1.0", folder="root/.local/lib/python3.11/site-packages"),
    }
    code, data = _verify(
        cli,
        folder,
        _built(
            tmp_path,
            "drifted",
            drift,
            {f"{SP}/beta/.wh.__init__.py": b""},
            user="root",
            labels=DRIFT_LABELS,
        ),
    )
    assert code == 1
    assert _kinds(data) == [
        ("apt-unexpected", "curl", "warning"),
        ("base-label", "org.opencontainers.image.base.digest", "error"),
        ("config-user", "user", "error"),
        ("label-lock-digest", "dev.reprolock.lock-digest", "error"),
        ("label-target", "dev.reprolock.target", "error"),
        ("python-shadowed", "alpha", "error"),
        ("python-unexpected", "extra", "warning"),
        ("python-version", "beta", "error"),
        ("record-missing", "beta:beta/__init__.py", "error"),
        ("record-modified", "alpha:alpha/__init__.py", "error"),
    ]
    code, strict = _verify(
        cli, folder, _built(tmp_path, "drifted", drift), "--strict", "--ignore", "beta"
    )
    assert ("python-unexpected", "extra", "error") in _kinds(strict)
    assert all(f["subject"] != "beta" for f in strict["findings"])


def test_the_venv_must_be_made_with_the_locked_interpreter(
    cli: Cli, tmp_path: Path, index_server: IndexServer, registry: Registry
) -> None:
    """pyvenv.cfg names the CPython that made the venv: another release is an error, another
    folder a warning, and a venv that does not say is a warning (not a silent pass)."""
    folder = _project(cli, tmp_path, index_server, registry)
    virtualenv = b"home = /usr/local/bin\nversion_info = 3.11.2.final.0\n"
    code, data = _verify(cli, folder, _built(tmp_path, "virtualenv", venv_cfg=virtualenv))
    assert (code, data["findings"]) == (0, [])
    other = b"home = /opt/python/bin\nversion = 3.11.9\n"
    code, data = _verify(cli, folder, _built(tmp_path, "other", venv_cfg=other))
    assert code == 1
    assert [(f["kind"], f["expected"], f["actual"], f["severity"]) for f in data["findings"]] == [
        ("interpreter-home", "/usr/local/bin", "/opt/python/bin", "warning"),
        ("interpreter-version", "3.11.2", "3.11.9", "error"),
    ]
    assert {f["where"] for f in data["findings"]} == {"/opt/venv/pyvenv.cfg"}
    code, data = _verify(
        cli, folder, _built(tmp_path, "unsaid", venv_cfg=b"home = /usr/local/bin\n")
    )
    assert code == 0
    assert _kinds(data) == [("interpreter-unknown", "/usr/local/bin/python3.11", "warning")]


def test_missing_rebuilt_and_foreign_base(
    cli: Cli, tmp_path: Path, index_server: IndexServer, registry: Registry
) -> None:
    folder = _project(cli, tmp_path, index_server, registry)
    app: LayerFiles = {
        "opt/venv/pyvenv.cfg": b"home = /usr/local/bin\nversion = 3.11.2\n",
        **_dist("alpha", "1.0+cu124"),
    }
    other_base: LayerFiles = {**BASE_LAYER, "etc/hostname": b"someone else's base\n"}
    image = Image(layers=[other_base, app], user="app")
    write_docker_archive(tmp_path / "odd.tar", image)
    code, data = _verify(cli, folder, f"docker-archive:{tmp_path / 'odd.tar'}")
    assert code == 1
    assert _kinds(data) == [
        ("base-layers", f"{registry.host}/verify/base:1", "error"),
        ("python-missing", "beta", "error"),
        ("python-rebuilt", "alpha", "error"),
    ]


def test_report_formats(
    cli: Cli, tmp_path: Path, index_server: IndexServer, registry: Registry
) -> None:
    folder = _project(cli, tmp_path, index_server, registry)
    image = _built(tmp_path, "bad", {**_dist("beta", "3.0"), f"{SP}/.wh.beta-2.0.dist-info": b""})
    run = cli("verify", "image", image, "--report", "junit", cwd=folder)
    assert run.code == 1
    suite = ET.fromstring(run.out)
    assert suite.get("failures") == "1"
    [case] = suite.findall("testcase")
    assert case.get("name") == "python-version beta"
    assert case.find("failure") is not None
    run = cli("verify", "image", image, "--report", "github", cwd=folder)
    assert run.out.startswith(
        "::error title=reprolock python-version::python-version beta: "
        "installed at another version (expected 2.0, found 3.0)"
    )
    run = cli("verify", "image", image, "--report", "markdown", cwd=folder)
    assert "| error | python-version | `beta` | 2.0 | 3.0 |" in run.out
    run = cli("verify", "image", image, cwd=folder)
    assert run.out.splitlines()[0].endswith("drift (1 error, 0 warnings)")
    run = cli("verify", "image", _built(tmp_path, "ok"), "--report", "junit", cwd=folder)
    assert run.code == 0
    assert ET.fromstring(run.out).get("failures") == "0"


def test_unreadable_image_and_missing_lock(
    cli: Cli, tmp_path: Path, index_server: IndexServer, registry: Registry
) -> None:
    run = cli("verify", "image", "docker-archive:/nonexistent.tar", cwd=tmp_path)
    assert run.code == 2  # no spec, no lock here
    assert "no reprolock.toml" in run.err
    folder = _project(cli, tmp_path, index_server, registry)
    run = cli("verify", "image", f"docker-archive:{tmp_path / 'missing.tar'}", cwd=folder)
    assert run.code == 4
    assert f"{tmp_path / 'missing.tar'}: no such file." in run.err


def test_apt_and_cuda_checks_against_a_written_lock(cli: Cli, tmp_path: Path) -> None:
    """apt and CUDA pins come from later layers of `lock`; a lock carrying them is checked."""
    from reprolock import api
    from reprolock.lock import AptPackage, CudaStack, LockedImage, LockedTarget, Lockfile
    from reprolock.model import Platform

    status = (
        b"Package: libc6\nStatus: install ok installed\nArchitecture: amd64\n"
        b"Version: 2.36-9\n\nPackage: git\nStatus: install ok installed\n"
        b"Architecture: amd64\nVersion: 1:2.39.5-0+deb12u1\n\n"
        b"Package: libcudnn9-cuda-12\nStatus: install ok installed\nArchitecture: amd64\n"
        b"Version: 9.1.0.70-1\n"
    )
    image = Image(
        env={"CUDA_VERSION": "12.4.1"},
        user="app",
        labels={"dev.reprolock.driver-min": "525.60.13"},
        layers=[
            {
                "var/lib/dpkg/status": status,
                "usr/local/cuda-12.4/version.json": b'{"cuda": {"version": "12.4.1"}}',
            }
        ],
    )
    write_docker_archive(tmp_path / "cuda.tar", image)

    def deb(name: str, version: str) -> AptPackage:
        return AptPackage(
            name=name,
            version=version,
            architecture="amd64",
            sha256="0" * 64,
            size=1,
            url=f"http://archive.example/{name}.deb",
        )

    target = LockedTarget(
        id="py3.11-amd64",
        platform=Platform.parse("linux/amd64"),
        python="3.11",
        cuda=CudaStack(toolkit="12.6.3", cudnn="9.1.0.70", driver_min="560.35.05"),
        apt=(deb("git", "1:2.39.2-1.1"), deb("curl", "7.88.1-10")),
    )
    lock = Lockfile(
        lock_version="1.0",
        created_by="test",
        inputs_hash="sha256:" + "1" * 64,
        matrices_version="x",
        image=LockedImage(workdir="/app", user="app"),
        targets=(target,),
    )
    api.write_lock(tmp_path / "reprolock.lock", lock)
    code, data = _verify(
        cli,
        tmp_path,
        f"docker-archive:{tmp_path / 'cuda.tar'}",
        "--lock",
        str(tmp_path / "reprolock.lock"),
    )
    assert code == 1
    assert _kinds(data) == [
        ("apt-missing", "curl", "error"),
        ("apt-version", "git", "error"),
        ("cuda-version", "cuda", "error"),
        ("label-driver", "dev.reprolock.driver-min", "error"),
    ]
