"""Reading images without running them, from every source, and refusing hostile ones."""

from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Run
from tests.imagefiles import (
    write_docker_archive,
    write_oci_archive,
    write_oci_layout,
    write_rootfs,
)
from tests.ociregistry import Dir, Hard, Image, LayerFiles, Link, Registry

Cli = Callable[..., Run]
SP = "opt/venv/lib/python3.11/site-packages"


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _dist(name: str, version: str, files: dict[str, bytes]) -> LayerFiles:
    info = f"{SP}/{name}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n".encode()
    out: LayerFiles = {f"{SP}/{path}": data for path, data in files.items()}
    out[f"{info}/METADATA"] = metadata
    out[f"{info}/INSTALLER"] = b"pip\n"
    out[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nTag: py3-none-any\n"
    rows = [f"{p},{_record_hash(d)},{len(d)}" for p, d in files.items()]
    rows.append(f"{name}-{version}.dist-info/METADATA,{_record_hash(metadata)},{len(metadata)}")
    rows.append(f"{name}-{version}.dist-info/RECORD,,")
    out[f"{info}/RECORD"] = ("\n".join(rows) + "\n").encode()
    return out


DPKG_STATUS = b"""Package: base-files
Status: install ok installed
Architecture: amd64
Version: 12.4+deb12u5

Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u7
Description: GNU C Library
 shared libraries

Package: removed-thing
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: libcudnn9-cuda-12
Status: install ok installed
Architecture: amd64
Version: 9.1.0.70-1
"""


def realistic_image() -> Image:
    """A Debian base, a venv, then a `pip uninstall`, a tampered file and an opaque folder."""
    base: LayerFiles = {
        "etc/os-release": Link("../usr/lib/os-release"),
        "usr/lib/os-release": b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n'
        b'VERSION_ID="12"\nVERSION_CODENAME=bookworm\n',
        "var/lib/dpkg/status": DPKG_STATUS,
        "etc/apt/sources.list.d/debian.sources": b"Types: deb\nURIs: http://deb.debian.org/debian\n",
        "usr/local/cuda-12.4/version.json": b'{"cuda": {"name": "CUDA SDK", "version": "12.4.1"}}',
        "usr/local/cuda": Link("cuda-12.4"),
        "usr/include/cudnn_version.h": b"#define CUDNN_MAJOR 9\n#define CUDNN_MINOR 1\n"
        b"#define CUDNN_PATCHLEVEL 0\n",
        "usr/bin/python3.11": b"\x7fELF fake interpreter",
        "usr/bin/python3": Hard("usr/bin/python3.11"),
        "opt/data/old.txt": b"old",
    }
    venv: LayerFiles = {
        "opt/venv/pyvenv.cfg": b"home = /usr/bin\n",
        **_dist("alpha", "1.0", {"alpha/__init__.py": b"A = 1\n"}),
        **_dist("beta", "2.0", {"beta/__init__.py": b"", "beta/extra.py": b"X = 2\n"}),
        **_dist("gamma", "3.0", {"gamma/__init__.py": b"G = 3\n"}),
        **_dist("nvidia-cudnn-cu12", "9.1.0.70", {"nvidia/cudnn/__init__.py": b""}),
    }
    later: LayerFiles = {
        f"{SP}/.wh.gamma-3.0.dist-info": b"",  # pip uninstall gamma
        f"{SP}/.wh.gamma": b"",
        f"{SP}/alpha/__init__.py": b"A = 'tampered'\n",
        f"{SP}/beta/.wh.extra.py": b"",
        "opt/data/.wh..wh..opq": b"",
        "opt/data/new.txt": b"new",
        "opt/empty": Dir(),
    }
    return Image(
        env={"CUDA_VERSION": "12.4.1", "PATH": "/opt/venv/bin:/usr/bin"},
        user="app",
        labels={"org.opencontainers.image.title": "demo"},
        layers=[base, venv, later],
    )


def _inspect(cli: Cli, image: str, *extra: str) -> dict[str, Any]:
    run = cli("--format", "json", "inspect", image, *extra)
    assert run.code == 0, run.err
    data: dict[str, Any] = json.loads(run.out)
    return data


def _content(data: dict[str, Any], *, keep_layers: bool = True) -> dict[str, Any]:
    """The inventory without the image's storage details (which differ per source)."""
    out = copy.deepcopy({k: v for k, v in data.items() if k != "image"})
    if not keep_layers:

        def strip(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: strip(v) for k, v in value.items() if k != "layer"}
            if isinstance(value, list):
                return [strip(v) for v in value]
            return value

        out = strip(out)
    return out


def test_inventory_of_a_realistic_image(cli: Cli, tmp_path: Path) -> None:
    write_docker_archive(tmp_path / "image.tar", realistic_image())
    data = _inspect(cli, f"docker-archive:{tmp_path / 'image.tar'}")
    assert data["os"] == {
        "id": "debian",
        "version-id": "12",
        "codename": "bookworm",
        "pretty-name": "Debian GNU/Linux 12 (bookworm)",
        "path": "/usr/lib/os-release",
        "layer": 0,
    }
    assert [(d["name"], d["version"], d["source"]) for d in data["deb-packages"]] == [
        ("base-files", "12.4+deb12u5", None),
        ("libc6", "2.36-9+deb12u7", "glibc"),
        ("libcudnn9-cuda-12", "9.1.0.70-1", None),
    ]
    [env] = data["python"]
    assert (env["path"], env["python"], env["kind"]) == (f"/{SP}", "3.11", "venv")
    dists = {d["name"]: d for d in env["packages"]}
    assert sorted(dists) == ["alpha", "beta", "nvidia-cudnn-cu12"]  # gamma was uninstalled
    assert dists["alpha"]["layer"] == 1 and dists["alpha"]["installer"] == "pip"
    assert [(i["path"], i["problem"]) for i in dists["alpha"]["record-issues"]] == [
        ("alpha/__init__.py", "modified")
    ]
    assert [(i["path"], i["problem"]) for i in dists["beta"]["record-issues"]] == [
        ("beta/extra.py", "missing")
    ]
    assert dists["nvidia-cudnn-cu12"]["record-issues"] == []
    assert [(c["name"], c["version"], c["source"], c["path"]) for c in data["cuda"]] == [
        ("cuda", "12.4.1", "env", "CUDA_VERSION"),
        ("cuda", "12.4.1", "version.json", "/usr/local/cuda-12.4/version.json"),
        ("cudnn", "9.1.0.70", "dpkg", "dpkg:libcudnn9-cuda-12"),
        ("cudnn", "9.1.0", "header", "/usr/include/cudnn_version.h"),
        ("cudnn", "9.1.0.70", "wheel", f"/{SP}/nvidia-cudnn-cu12-9.1.0.70.dist-info"),
    ]
    assert data["image"]["user"] == "app"
    assert data["image"]["history"] == ["layer 0", "layer 1", "layer 2"]
    assert len(data["image"]["layers"]) == 3
    assert data["apt-sources"] == ["/etc/apt/sources.list.d/debian.sources"]


def test_every_source_gives_the_same_inventory(
    cli: Cli, tmp_path: Path, registry: Registry
) -> None:
    image = realistic_image()
    write_docker_archive(tmp_path / "image.tar", image)
    write_oci_layout(tmp_path / "layout", image, tag="v1")
    write_oci_layout(tmp_path / "zstd", image, tag="v1", compression="zstd")
    write_oci_layout(tmp_path / "plain", image, tag="v1", compression="none")
    write_oci_archive(tmp_path / "layout.tar", image, tag="v1")
    registry.push_image("inspect/demo", "v1", image)
    write_rootfs(tmp_path / "rootfs", image.layers)
    reference = _inspect(cli, f"docker-archive:{tmp_path / 'image.tar'}")
    for source in (
        f"oci:{tmp_path / 'layout'}:v1",
        f"oci:{tmp_path / 'zstd'}",
        f"oci:{tmp_path / 'plain'}",
        f"oci-archive:{tmp_path / 'layout.tar'}:v1",
        f"registry:{registry.host}/inspect/demo:v1",
    ):
        data = _inspect(cli, source)
        assert _content(data) == _content(reference), source
        assert [layer["diff-id"] for layer in data["image"]["layers"]] == [
            layer["diff-id"] for layer in reference["image"]["layers"]
        ], source
    rootfs = _inspect(cli, f"dir:{tmp_path / 'rootfs'}")
    expected = _content(reference, keep_layers=False)
    expected["cuda"] = [c for c in expected["cuda"] if c["source"] != "env"]  # no config
    assert _content(rootfs, keep_layers=False) == expected


def test_text_output(cli: Cli, tmp_path: Path) -> None:
    write_oci_layout(tmp_path / "layout", realistic_image())
    run = cli("inspect", str(tmp_path / "layout"))
    assert run.code == 0, run.err
    assert f"python 3.11 venv /{SP}: 3 packages, 2 RECORD problems" in run.out
    assert "  ! alpha: alpha/__init__.py modified" in run.out
    assert "dpkg: 3 packages" in run.out


# -- hostile and broken input -----------------------------------------------------------------


def _raw_layer_archive(path: Path, tar_bytes: bytes, *, diff_id: str | None = None) -> None:
    """A docker archive around one raw (possibly hostile) layer tar."""
    config = json.dumps(
        {
            "os": "linux",
            "architecture": "amd64",
            "config": {},
            "rootfs": {
                "type": "layers",
                "diff_ids": [diff_id or "sha256:" + hashlib.sha256(tar_bytes).hexdigest()],
            },
        }
    )
    with tarfile.open(path, "w") as out:
        for name, data in (
            ("l/layer.tar", tar_bytes),
            ("c.json", config.encode()),
            (
                "manifest.json",
                json.dumps(
                    [{"Config": "c.json", "RepoTags": [], "Layers": ["l/layer.tar"]}]
                ).encode(),
            ),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))


def _tar(members: list[tuple[str, bytes]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def _expect_refused(cli: Cli, archive: Path, message: str) -> None:
    run = cli("inspect", f"docker-archive:{archive}")
    assert run.code == 4, run
    assert message in run.err, run.err
    assert "Traceback" not in run.err


def test_dot_dot_paths_are_refused(cli: Cli, tmp_path: Path) -> None:
    canary = tmp_path / "escaped"
    _raw_layer_archive(tmp_path / "a.tar", _tar([("../../escaped", b"pwned")]))
    _expect_refused(
        cli, tmp_path / "a.tar", 'the path "../../escaped" climbs out of the image root.'
    )
    assert not canary.exists()


def test_hard_link_out_of_the_root_is_refused(cli: Cli, tmp_path: Path) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("etc/passwd")
        info.type, info.linkname = tarfile.LNKTYPE, "../../../etc/passwd"
        tar.addfile(info)
    _raw_layer_archive(tmp_path / "a.tar", raw.getvalue())
    _expect_refused(cli, tmp_path / "a.tar", 'the path "../../../etc/passwd" climbs out')


def test_symlinks_resolve_inside_the_root(cli: Cli, tmp_path: Path) -> None:
    image = Image(
        layers=[
            {
                "etc/os-release": Link("../../../../../etc/os-release"),
                "var/lib/dpkg": Link("/../../var/lib/dpkg"),
            }
        ]
    )
    write_docker_archive(tmp_path / "image.tar", image)
    data = _inspect(cli, f"docker-archive:{tmp_path / 'image.tar'}")
    assert data["os"] is None  # the host's /etc/os-release is never read
    assert data["deb-packages"] == []


def test_absurd_member_size_is_refused(cli: Cli, tmp_path: Path) -> None:
    info = tarfile.TarInfo("huge.bin")
    info.size = 1 << 40
    header = info.tobuf(format=tarfile.GNU_FORMAT)
    _raw_layer_archive(tmp_path / "a.tar", header + b"\0" * 1024)
    _expect_refused(cli, tmp_path / "a.tar", "huge.bin claims 1099511627776 bytes: refusing.")


def test_decompression_bomb_is_refused(cli: Cli, tmp_path: Path) -> None:
    bomb = gzip.compress(_tar([("zeros", b"\0" * (300 << 20))]), compresslevel=9)
    assert len(bomb) < 1 << 20  # 300 MiB in under 1 MiB
    _raw_layer_archive(tmp_path / "a.tar", bomb, diff_id="sha256:" + "0" * 64)
    _expect_refused(cli, tmp_path / "a.tar", "refusing a decompression bomb.")


@pytest.mark.parametrize("cut", [0.5, 0.98])
def test_truncated_layers_are_refused(cli: Cli, tmp_path: Path, cut: float) -> None:
    tar = _tar([("a", b"x" * 100_000), ("b", bytes(range(256)) * 400)])
    data = gzip.compress(tar)
    _raw_layer_archive(
        tmp_path / "a.tar",
        data[: int(len(data) * cut)],
        diff_id="sha256:" + hashlib.sha256(tar).hexdigest(),
    )
    run = cli("inspect", f"docker-archive:{tmp_path / 'a.tar'}")
    assert run.code == 4
    assert "truncated" in run.err or "corrupt" in run.err, run.err


def test_corrupt_gzip_is_refused(cli: Cli, tmp_path: Path) -> None:
    data = bytearray(gzip.compress(_tar([("a", bytes(range(256)) * 400)])))
    data[200:210] = b"\xff" * 10
    _raw_layer_archive(tmp_path / "a.tar", bytes(data), diff_id="sha256:" + "0" * 64)
    _expect_refused(cli, tmp_path / "a.tar", "corrupt compressed data")


def test_diff_id_mismatch_is_refused(cli: Cli, tmp_path: Path) -> None:
    _raw_layer_archive(tmp_path / "a.tar", _tar([("a", b"1")]), diff_id="sha256:" + "1" * 64)
    _expect_refused(cli, tmp_path / "a.tar", "layer 0 does not match the config's diff_id")


def test_layout_blob_tampering_is_refused(cli: Cli, tmp_path: Path) -> None:
    write_oci_layout(tmp_path / "layout", Image(layers=[{"a": b"1"}]))
    manifest = json.loads((tmp_path / "layout" / "index.json").read_text())["manifests"][0]
    blob = json.loads(
        (tmp_path / "layout" / "blobs" / "sha256" / manifest["digest"].split(":")[1]).read_bytes()
    )
    layer_path = tmp_path / "layout" / "blobs" / "sha256" / blob["layers"][0]["digest"][7:]
    layer_path.write_bytes(gzip.compress(_tar([("a", b"2")])))
    run = cli("inspect", f"oci:{tmp_path / 'layout'}")
    assert run.code == 4
    assert "layer 0 does not match" in run.err


def test_not_an_archive(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "x.tar").write_bytes(b"hello")
    run = cli("inspect", f"docker-archive:{tmp_path / 'x.tar'}")
    assert run.code == 4
    assert "not a readable tar archive" in run.err
    run = cli("inspect", f"oci:{tmp_path}")
    assert run.code == 4
    assert "is not an OCI image layout (no index.json)" in run.err


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_files_across_the_layer_pieces_are_read_whole(compress: bool) -> None:
    """The walk reads a file's bytes as views of the decompressed pieces (`STEP` each):
    files of every size around a piece's end, behind long (pax) names and between other
    members, are hashed and kept byte for byte, and the diff_id covers the whole tar."""
    from reprolock.bounded import STEP
    from reprolock.image.scan import HEAD_BYTES, scan_layer

    sizes = [0, 1, 511, 512, 513, STEP - 1, STEP, STEP + 1, 3 * STEP + 17, 700, 5]
    files = {
        f"site-packages/{'long' * 40 if i % 3 == 0 else 'f'}{i}.pyc": bytes(
            (i * 7 + j) % 251 for j in range(size)
        )
        for i, size in enumerate(sizes)
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        folder = tarfile.TarInfo("site-packages/dir")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        link = tarfile.TarInfo("site-packages/link.pyc")
        link.type, link.linkname = tarfile.LNKTYPE, "site-packages/f7.pyc"
        tar.addfile(link)
    plain = out.getvalue() + bytes(3000)  # and something after the end-of-archive marker
    scan = scan_layer(
        io.BytesIO(gzip.compress(plain) if compress else plain),
        0,
        what="test layer",
        want_content=lambda path: path.endswith(("1.pyc", "7.pyc", "8.pyc")),
        want_hash=lambda _path: True,
        want_md5=lambda path: path.endswith("8.pyc"),
        want_head=lambda _path: True,
    )
    assert scan.diff_id == "sha256:" + hashlib.sha256(plain).hexdigest()
    assert scan.uncompressed_size == len(plain)
    entries = {e.path: e for e in scan.entries}
    for name, data in files.items():
        entry = entries[name]
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        assert (entry.size, entry.sha256, entry.head) == (len(data), digest, data[:HEAD_BYTES])
        assert entry.content == (data if name.endswith(("1.pyc", "7.pyc", "8.pyc")) else None)
    big = files["site-packages/f8.pyc"]
    assert entries["site-packages/f8.pyc"].md5 == hashlib.md5(big).hexdigest()
    assert entries["site-packages/link.pyc"].sha256 == entries["site-packages/f7.pyc"].sha256
    assert entries["site-packages/dir"].kind == "dir"
