"""`inspect --size`: bytes per layer (with its step) and per package, bytes wasted by later
layers, duplicate libraries (cuDNN from a Debian package and from a wheel), package
caches, and data files (a 200 MB model.safetensors) — and `verify` warning about data
files unless the lock allows them."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.checkfiles import SP, deb, dist, status, write_lock
from tests.conftest import Run
from tests.ociregistry import LayerFiles, Link, layer_tar, sha

Cli = Callable[..., Run]
MB = 1_000_000
MODEL = 200 * MB
CUDNN_DEB = b"\x7fELF cudnn from the deb" + bytes(6 * MB)
CUDNN_WHEEL = b"\x7fELF cudnn from the wheel" + bytes(5 * MB)


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


def _model_layer(path: Path, size: int) -> str:
    """A layer tar holding /models/model.safetensors of ``size`` zero bytes, written as a
    stream; its diff_id."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("models/model.safetensors")
        info.size = size
        tar.addfile(info, io.BufferedReader(_Zeros(size)))
    digest = hashlib.sha256()
    with path.open("rb") as data:
        while chunk := data.read(1 << 20):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def _archive(folder: Path, layers: list[LayerFiles], *, model: int = 0) -> str:
    """A `docker save` archive of ``layers`` (then a streamed model layer when ``model``),
    with a history naming each layer's step."""
    tars = [layer_tar(files) for files in layers]
    diff_ids = [sha(t) for t in tars]
    big = folder / "model.layer.tar"
    if model:
        diff_ids.append(_model_layer(big, model))
    steps = ["ADD rootfs.tar /", "RUN /bin/sh -c apt-get install ... && pip install ...", "RUN rm"]
    steps += ["COPY model.safetensors /models/"]
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [
                {"created_by": "ENV A=1", "empty_layer": True},
                *({"created_by": s} for s in steps[: len(diff_ids)]),
            ],
        }
    ).encode()
    path = folder / "image.tar"
    with tarfile.open(path, "w") as out:
        names = []
        for i, tar in enumerate(tars):
            info = tarfile.TarInfo(f"l{i}/layer.tar")
            info.size = len(tar)
            out.addfile(info, io.BytesIO(tar))
            names.append(info.name)
        if model:
            out.add(big, arcname="model/layer.tar")
            names.append("model/layer.tar")
        for name, data in (
            ("config.json", config),
            ("manifest.json", json.dumps([{"Config": "config.json", "Layers": names}]).encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    big.unlink(missing_ok=True)
    return f"docker-archive:{path}"


def _layers() -> list[LayerFiles]:
    libc, libc_files = deb("libc6", "2.36-9", {"usr/lib/x86_64-linux-gnu/libc.so.6": bytes(MB)})
    cudnn, cudnn_files = deb(
        "libcudnn9-cuda-12",
        "9.1.0.70-1",
        {"usr/lib/x86_64-linux-gnu/libcudnn.so.9.1.0": CUDNN_DEB},
    )
    base: LayerFiles = {
        **libc_files,
        **cudnn_files,
        "usr/lib/x86_64-linux-gnu/libcudnn.so.9": Link("libcudnn.so.9.1.0"),
        "var/lib/dpkg/status": status(libc, cudnn),
        "var/cache/apt/archives/libc6_2.36-9_amd64.deb": bytes(3 * MB),
        "opt/tmp/big.bin": bytes(4 * MB),  # deleted by layer 2: still shipped in layer 0
    }
    venv: LayerFiles = {
        "opt/venv/pyvenv.cfg": b"",
        **dist(
            "nvidia-cudnn-cu12",
            "9.1.0.70",
            {
                "nvidia/cudnn/lib/libcudnn.so.9": CUDNN_WHEEL,
                "nvidia/cudnn/__init__.py": b"",
            },
        ),
        **dist("tiny", "1.0", {"tiny/__init__.py": b"x = 1\n"}),
        "root/.cache/pip/http/a/b/c": bytes(2 * MB),
    }
    cleanup: LayerFiles = {
        "opt/tmp/.wh.big.bin": b"",
        f"{SP}/tiny/__init__.py": b"x = 2\n",  # shadows layer 1's
    }
    return [base, venv, cleanup]


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _archive(tmp_path_factory.mktemp("size"), _layers(), model=MODEL)


def _size(cli: Cli, image: str) -> dict[str, Any]:
    run = cli("--format", "json", "inspect", "--size", image)
    assert run.code == 0, run.err
    data: dict[str, Any] = json.loads(run.out)["size"]
    return data


def test_bytes_per_layer_and_package(cli: Cli, image: str) -> None:
    size = _size(cli, image)
    assert [(x["index"], x["step"], x["wasted"]) for x in size["layers"]] == [
        (0, "ADD rootfs.tar /", 4 * MB),
        (1, "RUN /bin/sh -c apt-get install ... && pip install ...", 6),
        (2, "RUN rm", 0),
        (3, "COPY model.safetensors /models/", 0),
    ]
    packages = {(p["kind"], p["name"]): p for p in size["packages"]}
    assert packages["apt", "libcudnn9-cuda-12"]["bytes"] == len(CUDNN_DEB)
    assert packages["apt", "libcudnn9-cuda-12"]["version"] == "9.1.0.70-1"
    wheel = packages["python", "nvidia-cudnn-cu12"]
    assert wheel["environment"] == "/" + SP and wheel["layers"] == [1]
    assert packages["python", "tiny"]["layers"] == [1, 2]
    assert size["wasted"] == 4 * MB + 6
    assert [(w["path"], w["layer"], w["by"], w["how"]) for w in size["waste"]] == [
        ("/opt/tmp/big.bin", 0, 2, "deleted"),
        (f"/{SP}/tiny/__init__.py", 1, 2, "shadowed"),
    ]
    assert size["caches"] == [
        {"name": "apt", "bytes": 3 * MB, "files": 1},
        {"name": "pip", "bytes": 2 * MB, "files": 1},
    ]
    assert size["stored"] == size["total"] + size["wasted"]


def test_a_duplicated_cudnn_and_a_model_are_reported(cli: Cli, image: str) -> None:
    size = _size(cli, image)
    [cudnn] = size["duplicate-libraries"]
    assert cudnn["name"] == "libcudnn"
    assert cudnn["wasted"] == len(CUDNN_WHEEL)
    assert [(c["path"], c["owner"]) for c in cudnn["copies"]] == [
        ("/usr/lib/x86_64-linux-gnu/libcudnn.so.9.1.0", "apt libcudnn9-cuda-12"),
        (f"/{SP}/nvidia/cudnn/lib/libcudnn.so.9", "python nvidia-cudnn-cu12"),
    ]
    assert size["data-files"] == [
        {"path": "/models/model.safetensors", "size": MODEL, "layer": 3, "why": "*.safetensors"},
    ]
    run = cli("inspect", "--size", image)
    assert run.code == 0, run.err
    assert "  libcudnn: 2 copies, 5.0 MB beyond the largest" in run.out
    assert "   200.0 MB  /models/model.safetensors  (layer 3, *.safetensors)" in run.out
    assert "     4.0 MB  /opt/tmp/big.bin  (layer 0, deleted by layer 2)" in run.out


def test_verify_warns_about_data_files_the_lock_does_not_allow(
    cli: Cli, image: str, tmp_path: Path
) -> None:
    versions = {"nvidia-cudnn-cu12": "9.1.0.70", "tiny": "1.0"}
    lock = write_lock(tmp_path, versions)
    run = cli("--format", "json", "verify", "image", image, "--lock", str(lock))
    assert run.code == 1, run.err  # tiny's file was edited in layer 2
    data = [f for f in json.loads(run.out)["findings"] if f["kind"] == "data-file"]
    assert [(f["subject"], f["severity"], f["actual"], f["where"]) for f in data] == [
        ("/models/model.safetensors", "warning", "200.0 MB", "layer 3 /models/model.safetensors")
    ]
    lock = write_lock(tmp_path, versions, allow_data=("/models/*",))
    run = cli("--format", "json", "verify", "image", image, "--lock", str(lock))
    assert all(f["kind"] != "data-file" for f in json.loads(run.out)["findings"])


def test_allow_data_in_the_spec_and_the_lock() -> None:
    """`[image] allow-data`: absolute path patterns, checked where they enter the spec and
    the lock, and carried from one to the other."""
    from reprolock import api
    from reprolock.errors import InputError
    from reprolock.lock import Lockfile, dumps, loads
    from reprolock.lock.freshness import locked_image
    from reprolock.spec import Spec, parse_spec

    def parse(allow: str) -> Spec:
        return parse_spec(
            f'[environment]\npython = "3.11"\n[image]\nallow-data = {allow}\n',
            file="reprolock.toml",
            matrices=api.shipped_matrices(),
            read_file=lambda name: "",
        )

    spec = parse('["/models/*.safetensors", "/data/*"]')
    image = locked_image(spec)
    assert image.allow_data == ("/data/*", "/models/*.safetensors")
    for bad in ('["models/*"]', '["/a/../b"]', '["/a b"]', '"/models"', "[1]"):
        with pytest.raises(InputError) as caught:
            parse(bad)
        assert "image.allow-data" in str(caught.value.to_dict())
    lock = Lockfile(
        lock_version="1.2",
        created_by="test",
        inputs_hash="sha256:" + "1" * 64,
        matrices_version="x",
        image=image,
    )
    text = dumps(lock)
    assert 'allow-data = [\n    "/data/*",\n    "/models/*.safetensors",\n]' in text
    assert loads(text, file="reprolock.lock").lock.image == image
    with pytest.raises(InputError):
        loads(text.replace('"/data/*"', '"data/*"'), file="reprolock.lock")
