"""The file checks on images really built by dockerd with plain `docker build` and pip (not
reprolock's Dockerfile), from the debootstrap'd Debian base (tests/dockerd.py).

numpy 2.1.3's manylinux wheel ships ``numpy/distutils/__pycache__/conv_template
.cpython-311.pyc`` with its hash in RECORD; pip byte-compiles after unpacking and
overwrites it.  The real wheel is served by a loopback index (fetched from PyPI once into
the tests' cache and checked against PyPI's sha256, as the debootstrap rootfs is cached):
a locally built wheel could ship a pyc too, but the acceptance is this wheel, with pip's
own compile step, in a venv, the system site (/usr/local/lib/python3.11/dist-packages)
and a user site.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.checkfiles import write_lock
from tests.conftest import SUMMARY, Run
from tests.dockerd import BASE_TAG, Dockerd
from tests.pyindex import IndexServer, serve
from tests.pypiwheels import real_wheel

Cli = Callable[..., Run]
NUMPY = "numpy-2.1.3-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
NUMPY_URL = (
    "https://files.pythonhosted.org/packages/7a/f0/"
    f"80811e836484262b236c684a75dfc4ba0424bc670e765afaa911468d9f39/{NUMPY}"
)
NUMPY_SHA256 = "bc6f24b3d1ecc1eebfbf5d6051faa49af40b03be1aaa781ebdadcbc090b4539b"
SITE = "/opt/venv/lib/python3.11/site-packages"
PIP = "python3 /usr/share/python-wheels/pip-23.0.1-py3-none-any.whl/pip"  # Debian's own


def _numpy_wheel() -> Path:
    """The real wheel, downloaded once (sha256-checked) into the tests' cache."""
    return real_wheel(NUMPY, NUMPY_URL.rsplit("/", 1)[0], NUMPY_SHA256)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexServer]:
    for server in serve():
        idx = server.add_index("local", tmp_path_factory.mktemp("index"))
        idx.add(_numpy_wheel())
        yield server


def _pip(index: IndexServer, pip: str, *options: str) -> str:
    return (
        f"{pip} install {' '.join(options)} --no-cache-dir --disable-pip-version-check "
        f"--index-url {index.url('local')} --trusted-host 127.0.0.1 numpy==2.1.3"
    )


def _dockerfiles(index: IndexServer) -> dict[str, str]:
    venv = f"FROM {BASE_TAG}\nRUN python3 -m venv /opt/venv && {_pip(index, '/opt/venv/bin/pip')}\n"
    return {
        "np-venv": venv,
        # a second numpy for the system interpreter, and one in root's user site
        "np-copies": venv
        + f"RUN {_pip(index, PIP, '--break-system-packages')}\n"
        + f"RUN {_pip(index, PIP, '--user', '--ignore-installed', '--break-system-packages')}\n",
        # edited in place: a numpy file, a dpkg-owned stdlib module, a dpkg-owned binary
        "tampered": venv
        + f"RUN echo '# edited' >> {SITE}/numpy/version.py"
        + " && echo '# edited' >> /usr/lib/python3.11/json/__init__.py"
        + " && printf 'x' >> /usr/bin/gzip\n",
        "conffile": f"FROM {BASE_TAG}\nRUN echo 'alias ll=\"ls -l\"' >> /etc/bash.bashrc\n",
        # what slim images do: dpkg told not to install docs, a local diversion (Ubuntu's
        # minimized images divert /usr/bin/man so), and packages from Debian whose
        # maintainer scripts write files (fc-cache, update-mime-database, man-db's
        # index, update-catalog, ssh's keys)
        "slim": f"FROM {BASE_TAG}\n"
        "RUN printf 'path-exclude=/usr/share/doc/*\\npath-exclude=/usr/share/man/*\\n'"
        " > /etc/dpkg/dpkg.cfg.d/docker"
        " && dpkg-divert --local --rename --add /usr/bin/zcat"
        " && printf '#!/bin/sh\\nexec gzip -dc \"$@\"\\n' > /usr/bin/zcat"
        " && chmod +x /usr/bin/zcat\n"
        "RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends"
        " fontconfig shared-mime-info man-db xml-core openssh-client"
        " && rm -rf /var/lib/apt/lists/* /usr/share/locale/*\n",
    }


@pytest.fixture(scope="module")
def images(
    dockerd: Dockerd, index: IndexServer, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """Each image built, saved, and named as `docker-archive:PATH`."""
    out = {}
    folder = tmp_path_factory.mktemp("built")
    for name, dockerfile in _dockerfiles(index).items():
        context = folder / name
        context.mkdir()
        (context / "Dockerfile").write_text(dockerfile)
        tag = f"reprolock-test/{name}:1"
        dockerd.docker("build", "--network", "host", "-q", "-t", tag, str(context))
        dockerd.docker("save", "-o", str(folder / f"{name}.tar"), tag)
        out[name] = f"docker-archive:{folder / name}.tar"
    return out


@pytest.fixture(scope="module")
def base_layers(dockerd: Dockerd) -> tuple[str, ...]:
    found = dockerd.docker("image", "inspect", "--format", "{{json .RootFS.Layers}}", BASE_TAG)
    layers: list[str] = json.loads(found.stdout)
    return tuple(layers)


def _verify(cli: Cli, lock: Path, image: str) -> tuple[int, list[dict[str, Any]]]:
    run = cli("--format", "json", "verify", "image", image, "--lock", str(lock))
    assert run.code in (0, 1), run.err
    findings: list[dict[str, Any]] = json.loads(run.out)["findings"]
    return run.code, findings


def test_pip_built_numpy_verifies_clean(
    cli: Cli, images: dict[str, str], base_layers: tuple[str, ...], tmp_path: Path
) -> None:
    lock = write_lock(tmp_path, {"numpy": "2.1.3"}, base_diff_ids=base_layers)
    code, findings = _verify(cli, lock, images["np-venv"])
    assert code == 0, findings
    # pip and setuptools came with the venv: not in the lock, warnings
    assert {(f["kind"], f["severity"]) for f in findings} <= {("python-unexpected", "warning")}
    run = cli("--format", "json", "inspect", images["np-copies"])
    envs = {e["path"]: e for e in json.loads(run.out)["python"]}
    for path in (
        SITE,
        "/usr/local/lib/python3.11/dist-packages",
        "/root/.local/lib/python3.11/site-packages",
    ):
        [numpy] = [p for p in envs[path]["packages"] if p["name"] == "numpy"]
        assert numpy["record-issues"] == [], path
        assert numpy["bytecode-rewritten"] >= 1, path  # conv_template's pyc, recompiled
        assert numpy["record-checked"] > 500


def test_dpkg_owned_files_and_a_numpy_file_edited(
    cli: Cli, images: dict[str, str], base_layers: tuple[str, ...], tmp_path: Path
) -> None:
    lock = write_lock(tmp_path, {"numpy": "2.1.3"}, base_diff_ids=base_layers)
    code, findings = _verify(cli, lock, images["tampered"])
    assert code == 1
    errors = {(f["kind"], f["subject"], f["where"]) for f in findings if f["severity"] == "error"}
    assert errors == {
        ("record-modified", "numpy:numpy/version.py", f"layer 2 {SITE}/numpy/version.py"),
        (
            "dpkg-modified",
            "libpython3.11-stdlib:/usr/lib/python3.11/json/__init__.py",
            "layer 2 /usr/lib/python3.11/json/__init__.py",
        ),
        ("dpkg-modified", "gzip:/bin/gzip", "layer 2 /bin/gzip"),
    }
    run = cli("--format", "json", "diff", images["np-venv"], images["tampered"], "--only", "files")
    changes = [(c["subject"], c["kind"], c["where"]) for c in json.loads(run.out)["changes"]]
    assert changes == [
        ("/bin/gzip", "modified", "apt gzip"),
        ("/usr/lib/python3.11/json/__init__.py", "modified", "apt libpython3.11-stdlib"),
        (f"{SITE}/numpy/version.py", "modified", "python numpy (/opt/venv (venv))"),
    ]


def test_a_changed_conffile_is_a_warning(
    cli: Cli, images: dict[str, str], base_layers: tuple[str, ...], tmp_path: Path
) -> None:
    lock = write_lock(tmp_path, {}, base_diff_ids=base_layers)
    code, findings = _verify(cli, lock, images["conffile"])
    assert code == 0
    assert [(f["kind"], f["subject"], f["severity"]) for f in findings] == [
        ("dpkg-conffile", "bash:/etc/bash.bashrc", "warning")
    ]


def test_diversions_excludes_and_maintainer_scripts_do_not_alarm(
    cli: Cli, images: dict[str, str], base_layers: tuple[str, ...], tmp_path: Path
) -> None:
    run = cli("--format", "json", "inspect", images["slim"])
    found = json.loads(run.out)["dpkg-integrity"]
    assert found["issues"] == []
    assert found["diverted"] == 1  # gzip's /bin/zcat, checked at /usr/bin/zcat.distrib
    lock = write_lock(tmp_path, {}, base_diff_ids=base_layers)
    code, findings = _verify(cli, lock, images["slim"])
    assert code == 0
    assert {f["kind"] for f in findings} == {"apt-unexpected"}  # not locked: warnings
    SUMMARY.append(
        f"dpkg check on the slim image: {found['checked']} of {found['files']} files compared"
    )


def test_diff_names_system_and_user_site_copies(cli: Cli, images: dict[str, str]) -> None:
    clean, copies = images["np-venv"], images["np-copies"]
    run = cli("--format", "json", "diff", clean, copies, "--only", "python")
    assert run.code == 0, run.err
    added = {
        (c["subject"], c["after"], c["where"])
        for c in json.loads(run.out)["changes"]
        if c["kind"] == "added"
    }
    assert ("numpy", "2.1.3", "/usr/local/lib/python3.11/dist-packages (system site)") in added
    assert ("numpy", "2.1.3", "/root/.local/lib/python3.11/site-packages (user site)") in added
    assert cli("diff", clean, copies, "--exit-code").code == 1
