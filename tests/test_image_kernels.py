"""The CUDA kernels an image's packages carry, read from its layers: `inspect` lists them per
package (and per file no package owns), `--gpus` says how they run each GPU, and `verify
image` holds them against the locked target's GPUs and measured extensions. The shared
objects are the nvcc-built fixtures of tests/test_fatbin.py."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from reprolock.image.scan import scan_layer
from reprolock.inventory import want_kernels
from tests.conftest import Run
from tests.imagefiles import write_docker_archive, write_oci_layout, write_rootfs
from tests.ociregistry import Hard, Image, LayerFiles, layer_tar, sha

Cli = Callable[..., Run]
FIXTURES = Path(__file__).parent / "data" / "fatbin"
SASS_75_80 = (FIXTURES / "libsass75-80_ptx90.so").read_bytes()  # sm_75 sm_80, PTX compute_90
SASS_90A = (FIXTURES / "libsass90a-100f-120_ptx120.so").read_bytes()  # sm_90a sm_100f sm_120
NO_FATBIN = b"\x7fELF\x02\x01\x01" + bytes(2000)
SP = "opt/venv/lib/python3.11/site-packages"
CUBLAS_LIB = f"/{SP}/nvidia/cublas/lib/libcublas.so.12"
DEB_LIB = "usr/local/cuda-12.4/targets/x86_64-linux/lib/libcublasLt.so.12"
VERIFY_SCHEMA = json.loads(
    (Path(__file__).parent.parent / "schemas" / "verify-report.schema.json").read_text()
)


def _hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _dist(name: str, version: str, files: dict[str, bytes | Hard]) -> LayerFiles:
    """A pip-installed distribution: its files, METADATA and a RECORD listing them all."""
    info = f"{name.replace('-', '_')}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n".encode()
    out: LayerFiles = {f"{SP}/{path}": data for path, data in files.items()}
    out[f"{SP}/{info}/METADATA"] = metadata
    rows = [f"{p},,{len(d) if isinstance(d, bytes) else ''}" for p, d in files.items()]
    rows.append(f"{info}/METADATA,{_hash(metadata)},{len(metadata)}")
    rows.append(f"{info}/RECORD,,")
    out[f"{SP}/{info}/RECORD"] = ("\n".join(rows) + "\n").encode()
    return out


BASE: LayerFiles = {
    "etc/os-release": b"ID=ubuntu\nVERSION_ID=22.04\n",
    "var/lib/dpkg/status": b"Package: libcublas-12-4\nStatus: install ok installed\n"
    b"Architecture: amd64\nVersion: 12.4.5.8-1\n",
    "var/lib/dpkg/info/libcublas-12-4:amd64.list": f"/{DEB_LIB}\n".encode(),
    DEB_LIB: SASS_75_80,
    "usr/local/cuda-12.4/version.json": b'{"cuda": {"version": "12.4.1"}}',
}
APP: LayerFiles = {
    "opt/venv/pyvenv.cfg": b"home = /usr/bin\n",
    **_dist(
        "nvidia-cublas-cu12",
        "12.4.5.8",
        {
            "nvidia/cublas/lib/libcublas.so.12": SASS_75_80,
            "nvidia/cublas/lib/libnvblas.so.12": NO_FATBIN,  # carries no kernels: not listed
        },
    ),
    **_dist(
        "torch",
        "2.5.1",
        {
            "torch/lib/libtorch_cuda.so": SASS_75_80,
            "torch/lib/libcusparseLt-294d6944.so.0": SASS_90A,  # vendored, not torch's own
        },
    ),
    **_dist("demo", "1.0", {"demo/_C.so": SASS_90A, "demo/__init__.py": b""}),
    # a hard link to a file the same layer wrote before: it has that file's kernels
    "opt/wheelhouse/libshared.so": SASS_90A,
    **_dist("linked", "0.1", {"linked/libshared.so": Hard("opt/wheelhouse/libshared.so")}),
    # a truncated library and hostile bytes named like one: read, never a crash
    **_dist(
        "broken",
        "0.1",
        {
            "broken/libcut.so": SASS_75_80[: len(SASS_75_80) // 2],
            "broken/libhostile.so.1": b"\x7fELF" + b"\x50\xed\x55\xba\x01\x00\x10\x00" * 5000,
        },
    ),
    # a toolkit library unpacked from a tarball: no package owns it
    "opt/cuda/lib64/libcublas.so.12": SASS_75_80,
}


def _image(tmp_path: Path) -> str:
    image = Image(layers=[BASE, APP], env={"CUDA_VERSION": "12.4.1"})
    write_docker_archive(tmp_path / "kernels.tar", image)
    return f"docker-archive:{tmp_path / 'kernels.tar'}"


def _json(cli: Cli, *args: str) -> dict[str, Any]:
    run = cli("--format", "json", "inspect", *args)
    assert run.code == 0, run.err
    data: dict[str, Any] = json.loads(run.out)
    return data


def _by_name(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k["name"]: k for k in data["kernels"]}


def test_the_layer_scan_gives_each_shared_object_its_kernels() -> None:
    import io

    scan = scan_layer(
        io.BytesIO(layer_tar(APP)),
        1,
        what="test layer",
        want_content=lambda _p: False,
        want_hash=lambda _p: False,
        want_kernels=want_kernels,
    )
    found = {e.path: e.kernels for e in scan.entries if e.kernels is not None}
    assert found[CUBLAS_LIB[1:]] is not None
    assert found[CUBLAS_LIB[1:]].describe() == "sm_75 sm_80, PTX compute_90 (ISA 9.0)"
    assert f"{SP}/nvidia/cublas/lib/libnvblas.so.12" not in found  # no fatbin
    assert found[f"{SP}/linked/libshared.so"] == found["opt/wheelhouse/libshared.so"]
    assert f"{SP}/demo/__init__.py" not in found
    # without the predicate nothing is scanned
    plain = scan_layer(
        io.BytesIO(layer_tar(APP)),
        1,
        what="test layer",
        want_content=lambda _p: False,
        want_hash=lambda _p: False,
    )
    assert all(e.kernels is None for e in plain.entries)


def test_inspect_lists_the_sass_of_nvidia_cublas(cli: Cli, tmp_path: Path) -> None:
    """The acceptance line: an image with nvidia-cublas-cu12 installed lists its SASS."""
    run = cli("inspect", _image(tmp_path))
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    start = lines.index("kernels: 6 packages with CUDA kernels, 2 files no package owns")
    assert lines[start + 1 :] == [
        "  libcublas-12-4 12.4.5.8-1: sm_75 sm_80, PTX compute_90 (ISA 9.0)",
        "  broken 0.1: sm_75 sm_80",  # half a library: its PTX was in the other half
        "  demo 1.0: sm_90a sm_100f sm_120, PTX compute_120 (ISA 9.0)",
        "  linked 0.1: sm_90a sm_100f sm_120, PTX compute_120 (ISA 9.0)",
        "  nvidia-cublas-cu12 12.4.5.8: sm_75 sm_80, PTX compute_90 (ISA 9.0)",
        "  torch 2.5.1 (libtorch_cuda.so, of 2 libraries): sm_75 sm_80, PTX compute_90 (ISA 9.0)",
        "  /opt/cuda/lib64/libcublas.so.12: sm_75 sm_80, PTX compute_90 (ISA 9.0)",
        "  /opt/wheelhouse/libshared.so: sm_90a sm_100f sm_120, PTX compute_120 (ISA 9.0)",
    ]
    verbose = cli("-v", "inspect", _image(tmp_path)).out
    assert (
        f"      /{SP}/torch/lib/libcusparseLt-294d6944.so.0: sm_90a sm_100f sm_120, PTX "
        "compute_120 (ISA 9.0)"
    ) in verbose.splitlines()


def test_inspect_json_kernels_from_every_source(cli: Cli, tmp_path: Path) -> None:
    data = _json(cli, _image(tmp_path))
    kernels = _by_name(data)
    assert kernels["nvidia-cublas-cu12"] == {
        "kind": "python",
        "name": "nvidia-cublas-cu12",
        "version": "12.4.5.8",
        "environment": f"/{SP}",
        "library": CUBLAS_LIB,
        "sass": ["sm_75", "sm_80"],
        "ptx": [{"arch": "compute_90", "isa": "9.0"}],
        "libraries": [
            {
                "path": CUBLAS_LIB,
                "layer": 1,
                "sass": ["sm_75", "sm_80"],
                "ptx": [{"arch": "compute_90", "isa": "9.0"}],
            }
        ],
    }
    assert kernels["libcublas-12-4"]["kind"] == "apt"
    assert kernels["libcublas-12-4"]["libraries"][0]["layer"] == 0
    assert kernels["/opt/cuda/lib64/libcublas.so.12"]["kind"] == "file"
    assert kernels["torch"]["library"] == f"/{SP}/torch/lib/libtorch_cuda.so"
    assert kernels["linked"]["libraries"][0]["sass"] == ["sm_90a", "sm_100f", "sm_120"]
    assert [lib["path"] for lib in kernels["broken"]["libraries"]] == [f"/{SP}/broken/libcut.so"]
    assert "gpus" not in kernels["torch"]

    # the same from an OCI layout and from a root filesystem folder (layers aside)
    image = Image(layers=[BASE, APP], env={"CUDA_VERSION": "12.4.1"})
    write_oci_layout(tmp_path / "layout", image)
    write_rootfs(tmp_path / "rootfs", image.layers)

    def without_layers(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: without_layers(v) for k, v in value.items() if k != "layer"}
        if isinstance(value, list):
            return [without_layers(v) for v in value]
        return value

    assert _json(cli, f"oci:{tmp_path / 'layout'}")["kernels"] == data["kernels"]
    rootfs = _json(cli, f"dir:{tmp_path / 'rootfs'}")["kernels"]
    assert without_layers(rootfs) == without_layers(data["kernels"])


def test_gpus_say_how_each_package_runs(cli: Cli, tmp_path: Path) -> None:
    image = _image(tmp_path)
    run = cli("inspect", image, "--gpus", "V100,A100", "--gpus", "H100")
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    at = lines.index("  nvidia-cublas-cu12 12.4.5.8: sm_75 sm_80, PTX compute_90 (ISA 9.0)")
    assert lines[at + 1] == "   ! sm_70 (V100): no kernels"
    assert lines[at + 2] == "     sm_80 (A100): native sm_80"
    assert lines[at + 3].startswith("     sm_90 (H100): PTX compute_90, JIT-compiled (driver >= ")
    at = lines.index("  demo 1.0: sm_90a sm_100f sm_120, PTX compute_120 (ISA 9.0)")
    assert lines[at + 1 : at + 4] == [
        "   ! sm_70 (V100): no kernels",
        "   ! sm_80 (A100): no kernels",
        "     sm_90 (H100): native sm_90a",
    ]
    data = _json(cli, image, "--gpus", "V100,sm_80")
    assert _by_name(data)["torch"]["gpus"] == [
        {
            "gpu": "V100",
            "sm": "sm_70",
            "name": "sm_70 (V100)",
            "how": None,
            "via": None,
            "runs": "no kernels",
            "jit-driver": None,
        },
        {
            "gpu": "sm_80",
            "sm": "sm_80",
            "name": "sm_80",
            "how": "sass",
            "via": "sm_80",
            "runs": "native sm_80",
            "jit-driver": None,
        },
    ]


def test_an_unknown_gpu_is_an_input_error(cli: Cli, tmp_path: Path) -> None:
    run = cli("inspect", _image(tmp_path), "--gpus", "A100,V1000")
    assert run.code == 2
    assert run.err == (
        'error: --gpus names an unknown GPU: "V1000" (did you mean "P100" or "T1000" or '
        '"V100"?).\nName GPUs from `reprolock matrix gpus` (e.g. --gpus A100,V100), or give '
        'compute capabilities such as "8.0" or "sm_90".\n'
    )


def _lock(
    tmp_path: Path, *, base: bool, extension_arches: tuple[str, ...], cuda: bool = True
) -> Path:
    from reprolock import api
    from reprolock.lock import (
        CudaStack,
        ExtensionKernels,
        LockedBase,
        LockedImage,
        LockedTarget,
        Lockfile,
    )
    from reprolock.model import Platform

    target = LockedTarget(
        id="py3.11-amd64",
        platform=Platform.parse("linux/amd64"),
        python="3.11",
        base=LockedBase(
            ref="example.com/cuda:12.4.1",
            manifest_digest="sha256:" + "b" * 64,
            diff_ids=(sha(layer_tar(BASE)),),
        )
        if base
        else None,
        cuda=None
        if not cuda
        else CudaStack(
            toolkit="12.4.1",
            driver_min="550.54.14",
            devices=(("V100", "sm_70"), ("A100", "sm_80"), ("H100", "sm_90")),
            extensions=(
                ExtensionKernels(
                    name="demo",
                    version="1.0",
                    library="demo/_C.so",
                    arches=extension_arches,
                    ptx=("compute_120",),
                    ptx_isa="9.0",
                    measured="demo-1.0-cp311-cp311-linux_x86_64.whl sha256:" + "c" * 64,
                ),
            ),
        ),
    )
    lock = Lockfile(
        lock_version="1.3",
        created_by="test",
        inputs_hash="sha256:" + "1" * 64,
        matrices_version="x",
        image=LockedImage(workdir="/app", user="root", venv="/opt/venv"),
        targets=(target,),
    )
    path = tmp_path / "reprolock.lock"
    api.write_lock(path, lock)
    return path


def _verify(cli: Cli, tmp_path: Path, lock: Path) -> tuple[int, list[dict[str, Any]]]:
    run = cli("--format", "json", "verify", "image", _image(tmp_path), "--lock", str(lock))
    assert run.code in (0, 1), run.err
    data = json.loads(run.out)
    jsonschema.validate(data, VERIFY_SCHEMA)
    return run.code, [
        f
        for f in data["findings"]
        if f["kind"] in ("gpu-kernels", "gpu-jit-driver", "extension-kernels")
    ]


def test_verify_finds_gpus_without_kernels(cli: Cli, tmp_path: Path) -> None:
    from reprolock.api import shipped_matrices
    from reprolock.compat.arches import ArchList
    from reprolock.stack.judge import jit_floor

    floor = jit_floor(ArchList(sass=(), ptx_isa="9.0"), None, shipped_matrices())
    assert floor is not None and str(floor[0]) > "550.54.14"  # ISA 9.0 needs CUDA 13's
    lock = _lock(tmp_path, base=True, extension_arches=("sm_90a", "sm_100f", "sm_120"))
    code, found = _verify(cli, tmp_path, lock)
    assert code == 1
    assert [(f["kind"], f["subject"], f["severity"]) for f in found] == [
        ("gpu-jit-driver", "/opt/cuda/lib64/libcublas.so.12:H100", "warning"),
        ("gpu-jit-driver", "nvidia-cublas-cu12:H100", "warning"),
        ("gpu-jit-driver", "torch:H100", "error"),
        ("gpu-kernels", "/opt/cuda/lib64/libcublas.so.12:V100", "warning"),
        ("gpu-kernels", "/opt/wheelhouse/libshared.so:A100", "warning"),
        ("gpu-kernels", "/opt/wheelhouse/libshared.so:V100", "warning"),
        ("gpu-kernels", "broken:H100", "warning"),
        ("gpu-kernels", "broken:V100", "warning"),
        ("gpu-kernels", "demo:A100", "error"),
        ("gpu-kernels", "demo:V100", "error"),
        ("gpu-kernels", "linked:A100", "warning"),
        ("gpu-kernels", "linked:V100", "warning"),
        ("gpu-kernels", "nvidia-cublas-cu12:V100", "warning"),
        ("gpu-kernels", "torch:V100", "error"),
    ]  # libcublas-12-4 is the locked base's: not judged
    cublas = next(f for f in found if f["subject"] == "nvidia-cublas-cu12:V100")
    assert cublas == {
        "kind": "gpu-kernels",
        "subject": "nvidia-cublas-cu12:V100",
        "expected": "kernels for sm_70 (V100)",
        "actual": "sm_75 sm_80, PTX compute_90 (ISA 9.0)",
        "severity": "warning",
        "where": f"layer 1 {CUBLAS_LIB}",
        "message": f"nvidia-cublas-cu12 12.4.5.8: {CUBLAS_LIB} has neither SASS of the "
        "sm_70 (V100) family nor PTX it can JIT (it carries sm_75 sm_80, PTX compute_90 "
        "(ISA 9.0))",
    }
    torch = next(f for f in found if f["subject"] == "torch:H100")
    assert torch["message"].startswith(
        f"torch 2.5.1: /{SP}/torch/lib/libtorch_cuda.so runs sm_90 (H100) only by "
        "JIT-compiling its PTX, which needs driver >= "
    )
    assert torch["actual"] == "driver-min 550.54.14"

    # without a base, the base's deb is judged too; --ignore skips a package, or one GPU
    lock = _lock(tmp_path, base=False, extension_arches=("sm_90a", "sm_100f", "sm_120"))
    _, found = _verify(cli, tmp_path, lock)
    assert ("gpu-kernels", "libcublas-12-4:V100", "warning") in [
        (f["kind"], f["subject"], f["severity"]) for f in found
    ]
    run = cli(
        "--format",
        "json",
        "verify",
        "image",
        _image(tmp_path),
        "--lock",
        str(lock),
        "--ignore",
        "torch",
        "--ignore",
        "demo:V100",
    )
    subjects = {f["subject"] for f in json.loads(run.out)["findings"]}
    assert not {"torch:V100", "torch:H100", "demo:V100"} & subjects
    assert "demo:A100" in subjects


def test_verify_finds_a_measured_extension_that_changed(cli: Cli, tmp_path: Path) -> None:
    lock = _lock(tmp_path, base=True, extension_arches=("sm_80",))
    _, found = _verify(cli, tmp_path, lock)
    [changed] = [f for f in found if f["kind"] == "extension-kernels"]
    assert changed == {
        "kind": "extension-kernels",
        "subject": "demo",
        "expected": "sm_80, PTX compute_120 (ISA 9.0)",
        "actual": "sm_90a sm_100f sm_120, PTX compute_120 (ISA 9.0)",
        "severity": "error",
        "where": f"layer 1 /{SP}/demo/_C.so",
        "message": "demo 1.0: the lock measured sm_80, PTX compute_120 (ISA 9.0) in "
        "demo/_C.so (demo-1.0-cp311-cp311-linux_x86_64.whl sha256:" + "c" * 64 + "); the "
        f"image's /{SP}/demo/_C.so carries sm_90a sm_100f sm_120, PTX compute_120 (ISA 9.0)",
    }


@pytest.fixture
def scans(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every fatbin scanner a read starts, from a layer or from a folder."""
    from reprolock.compat.fatbin import FatbinScanner

    started: list[object] = []

    class Counted(FatbinScanner):
        def __init__(self) -> None:
            super().__init__()
            started.append(self)

    monkeypatch.setattr("reprolock.image.scan.FatbinScanner", Counted)
    monkeypatch.setattr("reprolock.image.rootfs.FatbinScanner", Counted)
    return started


def test_no_kernel_scan_skips_it_and_says_so(cli: Cli, tmp_path: Path, scans: list[object]) -> None:
    image = _image(tmp_path)
    scanned = _json(cli, image)
    assert len(scans) == 10  # every shared object the layers write (not the hard link)
    scans.clear()
    run = cli("inspect", image, "--no-kernel-scan")
    assert run.code == 0, run.err
    assert run.out.splitlines()[-1] == "kernels: not scanned (--no-kernel-scan)"
    skipped = _json(cli, image, "--no-kernel-scan")
    assert skipped.pop("kernels") is None  # not [], which says none were found
    assert scanned.pop("kernels")
    assert skipped == scanned  # the rest of the inventory as with the scan
    write_rootfs(tmp_path / "rootfs", [BASE, APP])
    assert _json(cli, f"dir:{tmp_path / 'rootfs'}", "--no-kernel-scan")["kernels"] is None
    assert scans == []


def test_no_kernel_scan_and_gpus_exclude_each_other(cli: Cli, tmp_path: Path) -> None:
    run = cli("inspect", _image(tmp_path), "--no-kernel-scan", "--gpus", "A100")
    assert run.code == 2
    assert run.err == (
        "error: --gpus says how the image's CUDA kernels run those GPUs: it needs the kernel "
        "scan that --no-kernel-scan skips.\nDrop one of them.\n"
    )


def test_verify_scans_kernels_only_for_a_lock_with_gpus(
    cli: Cli, tmp_path: Path, scans: list[object]
) -> None:
    """A target without a CUDA stack has no kernel findings to make: its image is read
    without the scan (with GPUs, `test_verify_finds_gpus_without_kernels` finds them)."""
    _, found = _verify(cli, tmp_path, _lock(tmp_path, base=True, extension_arches=(), cuda=False))
    assert (found, scans) == ([], [])
    _, found = _verify(cli, tmp_path, _lock(tmp_path, base=True, extension_arches=("sm_80",)))
    assert found and len(scans) == 10


def test_a_diff_of_two_images_scans_no_kernels(
    cli: Cli, tmp_path: Path, scans: list[object]
) -> None:
    """No section of a diff compares kernels."""
    write_oci_layout(tmp_path / "layout", Image(layers=[BASE], env={"CUDA_VERSION": "12.4.1"}))
    run = cli("diff", f"oci:{tmp_path / 'layout'}", _image(tmp_path))
    assert run.code == 0, run.err
    assert "torch" in run.out
    assert scans == []


@pytest.mark.parametrize("size", [0, 7, 64, 4096])
def test_truncated_libraries_do_not_crash(cli: Cli, tmp_path: Path, size: int) -> None:
    layer: LayerFiles = {
        "opt/lib/libcut.so": SASS_90A[:size] + SASS_75_80[size:],
        "opt/lib/libhead.so": SASS_75_80[: size + 100],
    }
    write_docker_archive(tmp_path / "cut.tar", Image(layers=[layer]))
    data = _json(cli, f"docker-archive:{tmp_path / 'cut.tar'}")
    assert all(k["kind"] == "file" for k in data["kernels"])
