"""`reprolock lock` with the stack solver, against real wheels on loopback indexes: a
PyPI stand-in (the default index) and a PyTorch variant index root (cu118/, cpu/)."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests import pyindex
from tests.conftest import Run
from tests.ociregistry import Image, Registry, python_files
from tests.pyindex import IndexServer

LockCli = Callable[..., Run]
X86 = "cp311-cp311-manylinux_2_17_x86_64"
ANY_LINUX = "py3-none-manylinux2014_x86_64"


@pytest.fixture
def indexes(index_server: IndexServer, tmp_path: Path) -> IndexServer:
    pypi = index_server.add_index("pypi", tmp_path / "pypi")
    cuda12 = ["nvidia-cuda-runtime-cu12==12.4.127", "nvidia-cudnn-cu12==9.1.0.70"]
    pypi.wheel("torch", "2.5.1", requires=cuda12, tag=X86)
    pypi.wheel("torch", "2.4.1", requires=["nvidia-cuda-runtime-cu12==12.1.105"], tag=X86)
    pypi.wheel("nvidia-cuda-runtime-cu12", "12.4.127", tag=ANY_LINUX)
    pypi.wheel("nvidia-cuda-runtime-cu12", "12.1.105", tag=ANY_LINUX)
    pypi.wheel("nvidia-cudnn-cu12", "9.1.0.70", tag=ANY_LINUX)
    pypi.wheel("nvidia-cuda-runtime-cu11", "11.8.89", tag=ANY_LINUX)
    pypi.wheel("nvidia-cudnn-cu11", "9.1.0.70", tag=ANY_LINUX)
    # torchaudio 2.5.1 pins its torch; 2.11.0 (as on PyPI) declares no requirement at all.
    pypi.wheel("torchaudio", "2.5.1", requires=["torch==2.5.1"], tag=X86)
    pypi.wheel("torchaudio", "2.11.0", tag=X86)
    cu118 = index_server.add_index("cu118", tmp_path / "cu118")
    cu118.wheel(
        "torch",
        "2.5.1+cu118",
        requires=["nvidia-cuda-runtime-cu11==11.8.89", "nvidia-cudnn-cu11==9.1.0.70"],
        tag=X86,
    )
    cu118.wheel("torchaudio", "2.5.1+cu118", requires=["torch==2.5.1"], tag=X86)
    cpu = index_server.add_index("cpu", tmp_path / "cpu")
    cpu.wheel("torch", "2.5.1+cpu", tag=X86)
    return index_server


def _spec(tmp_path: Path, server: IndexServer, requirements: list[str], gpu: str = "") -> None:
    reqs = ", ".join(f'"{r}"' for r in requirements)
    (tmp_path / "reprolock.toml").write_text(
        f'[environment]\npython = "3.11"\n\n{gpu}\n'
        f'[python]\nrequirements = [{reqs}]\npytorch-index = "{server.root}"\n'
        f'[[python.index]]\nname = "pypi"\nurl = "{server.url("pypi")}"\ndefault = true\n'
    )


def _target(tmp_path: Path) -> dict[str, Any]:
    lock = tomllib.loads((tmp_path / "reprolock.lock").read_text())
    target: dict[str, Any] = lock["targets"][0]
    return target


def _pins(target: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["version"] for p in target["packages"]}


def test_pypi_wheel_when_it_fits_and_companions_pinned(
    lock_cli: LockCli, tmp_path: Path, indexes: IndexServer
) -> None:
    _spec(tmp_path, indexes, ["torch==2.5.1", "torchaudio"], '[gpu]\ndevices = ["A100"]')
    run = lock_cli("lock")
    assert run.code == 0, run.err
    target = _target(tmp_path)
    # The newest torchaudio names no torch; a plain resolver would pair it with torch 2.5.1.
    assert _pins(target)["torchaudio"] == "2.5.1"
    assert _pins(target)["torch"] == "2.5.1"
    cuda = target["cuda"]
    assert cuda["frameworks"] == ["torch 2.5.1 (PyPI wheel, CUDA 12.4)"]
    assert cuda["toolkit"] == "12.4.1"  # cudart 12.4.127 is CUDA 12.4 Update 1
    assert cuda["coverage"] == {"A100": "native sm_80"}
    assert "sm_80" in cuda["arches"] and "sm_90" in cuda["arches"]


def test_strict_old_driver_routes_torch_to_its_cuda_variant_index(
    lock_cli: LockCli, tmp_path: Path, indexes: IndexServer
) -> None:
    gpu = '[gpu]\ndevices = ["H100"]\ndriver = "520.61.05"\ncompat = "strict"'
    _spec(tmp_path, indexes, ["torch==2.5.*", "torchaudio"], gpu)
    run = lock_cli("lock")
    assert run.code == 0, run.err
    target = _target(tmp_path)
    pins = _pins(target)
    assert pins["torch"] == "2.5.1+cu118"
    assert pins["torchaudio"] == "2.5.1+cu118"
    assert pins["nvidia-cuda-runtime-cu11"] == "11.8.89"
    torch = next(p for p in target["packages"] if p["name"] == "torch")
    assert torch["index"] == f"{indexes.root}/cu118"
    assert torch["wheels"][0]["url"].startswith(f"{indexes.root}/cu118/files/")
    assert target["cuda"]["frameworks"] == ["torch 2.5.1 (cu118, CUDA 11.8)"]
    assert target["cuda"]["driver-min"] == "520.61.05"


def test_cpu_target_gets_the_cpu_build(
    lock_cli: LockCli, tmp_path: Path, indexes: IndexServer
) -> None:
    _spec(tmp_path, indexes, ["torch==2.5.1"])
    run = lock_cli("lock")
    assert run.code == 0, run.err
    target = _target(tmp_path)
    assert _pins(target) == {"torch": "2.5.1+cpu"}
    assert "cuda" not in target


def test_companions_the_table_rules_out_beside_the_specs_pin_need_no_metadata(
    lock_cli: LockCli, tmp_path: Path, indexes: IndexServer
) -> None:
    # torch==2.5.1 is the spec's own pin: the table says torchaudio 2.11 and 2.10 need torch
    # 2.11 and 2.10, so the resolver rejects them on that alone, without their metadata.
    pypi = indexes.indexes["pypi"]
    pypi.wheel("torchaudio", "2.10.0", tag=X86)
    _spec(tmp_path, indexes, ["torch==2.5.1", "torchaudio"], '[gpu]\ndevices = ["A100"]')
    run = lock_cli("lock")
    assert run.code == 0, run.err
    assert _pins(_target(tmp_path))["torchaudio"] == "2.5.1"
    asked = [path for path, _, _ in indexes.log if "/files/torchaudio-" in path]
    assert asked == ["/pypi/files/torchaudio-2.5.1-cp311-cp311-manylinux_2_17_x86_64.whl.metadata"]


def test_companions_the_table_rules_out_beside_a_dependencys_pin_are_fetched_at_once(
    lock_cli: LockCli, tmp_path: Path, indexes: IndexServer
) -> None:
    # torch==2.5.1 comes from a dependency (which backtracking could drop): the resolver reads
    # torchaudio 2.11 and 2.10 before walking past them to 2.5.1, and their metadata is asked
    # for together (the newest is answered only once 2.5.1's has been asked for).
    pypi = indexes.indexes["pypi"]
    pypi.wheel("torchaudio", "2.10.0", tag=X86)
    pypi.wheel("pinner", "1.0", requires=["torch==2.5.1"])
    newest = "torchaudio-2.11.0-cp311-cp311-manylinux_2_17_x86_64.whl"
    pypi.hold_until[f"{newest}.metadata"] = (
        "torchaudio-2.5.1-cp311-cp311-manylinux_2_17_x86_64.whl.metadata"
    )
    _spec(tmp_path, indexes, ["pinner", "torchaudio"], '[gpu]\ndevices = ["A100"]')
    run = lock_cli("lock")
    assert run.code == 0, run.err
    pins = _pins(_target(tmp_path))
    assert (pins["torch"], pins["torchaudio"]) == ("2.5.1", "2.5.1")
    assert indexes.held == [(f"{newest}.metadata", True)]


def test_below_the_companion_the_table_allows_nothing_is_fetched_ahead(
    lock_cli: LockCli, tmp_path: Path, indexes: IndexServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The resolver walks past torchaudio 2.11 and 2.10 (the table rules them out beside
    # torch==2.5.1) to 2.5.1, the release the table expects to fit: those two are not
    # rejections that call for fetching further down.  2.5.1's metadata is held until
    # 2.5.0's is asked for, which it never is.
    monkeypatch.setattr(pyindex, "HOLD_SECONDS", 1.0)
    pypi = indexes.indexes["pypi"]
    pypi.wheel("torchaudio", "2.10.0", tag=X86)
    pypi.wheel("torchaudio", "2.5.0", requires=["torch==2.5.0"], tag=X86)
    expected = "torchaudio-2.5.1-cp311-cp311-manylinux_2_17_x86_64.whl.metadata"
    pypi.hold_until[expected] = "torchaudio-2.5.0-cp311-cp311-manylinux_2_17_x86_64.whl.metadata"
    _spec(tmp_path, indexes, ["torch==2.5.1", "torchaudio"], '[gpu]\ndevices = ["A100"]')
    run = lock_cli("lock")
    assert run.code == 0, run.err
    assert _pins(_target(tmp_path))["torchaudio"] == "2.5.1"
    assert indexes.held == [(expected, False)]


def test_an_unpinned_companion_is_held_to_the_torch_minors_it_was_built_and_released_for(
    lock_cli: LockCli, tmp_path: Path, index_server: IndexServer
) -> None:
    # As on PyPI: torchaudio 2.11.0 declares no requirement on torch at all; it was built for
    # and uploaded with torch 2.11.0, and a plain resolver pairs it with the newest torch.
    cpu = index_server.add_index("cpu", tmp_path / "cpu")
    index_server.add_index("pypi", tmp_path / "pypi")
    for version in ("2.11.0", "2.14.0"):
        cpu.wheel("torch", f"{version}+cpu", tag=X86)
    cpu.wheel("torchaudio", "2.11.0+cpu", tag=X86)
    _spec(tmp_path, index_server, ["torch", "torchaudio==2.11.0"])
    run = lock_cli("lock")
    assert run.code == 0, run.err
    assert _pins(_target(tmp_path)) == {"torch": "2.11.0+cpu", "torchaudio": "2.11.0+cpu"}


def test_unsatisfiable_stack_is_one_paragraph_with_fixes(
    lock_cli: LockCli, tmp_path: Path, indexes: IndexServer
) -> None:
    _spec(tmp_path, indexes, ["torch==2.5.*"], '[gpu]\ndevices = ["RTX 5090"]\ndriver = "570.26"')
    run = lock_cli("lock")
    assert run.code == 3
    first = run.err.splitlines()[0]
    assert first.startswith("error: py3.11-amd64: torch 2.5 has no build that fits")
    assert "has no kernels for sm_120 (RTX 5090)" in first
    assert "torch>=2.7 with cu128 fits" in first
    assert "Traceback" not in run.err
    assert not (tmp_path / "reprolock.lock").exists()


def _cuda_image(cuda: str, cudnn: str | None = None) -> Image:
    env = {"CUDA_VERSION": cuda, "PATH": "/usr/local/cuda/bin:/usr/bin:/bin"}
    if cudnn:
        env["NV_CUDNN_VERSION"] = cudnn
    return Image(
        architecture="amd64",
        env=env,
        layers=[{"etc/os-release": b'ID=ubuntu\nVERSION_ID="22.04"\n'}, python_files()],
    )


def test_base_tag_chosen_from_the_catalog_to_match_the_wheels(
    lock_cli: LockCli, tmp_path: Path, indexes: IndexServer, registry: Registry
) -> None:
    registry.push_image("nvidia/cuda", "12.4.1-base-ubuntu22.04", _cuda_image("12.4.1"))
    _spec(tmp_path, indexes, ["torch==2.5.1"], '[gpu]\ndevices = ["A100"]')
    with (tmp_path / "reprolock.toml").open("a") as spec:
        spec.write(
            '[base]\nimage = "nvidia/cuda"\n'
            f'[registry]\nmirrors = {{ "docker.io" = "{registry.host}" }}\n'
        )
    run = lock_cli("lock")
    assert run.code == 0, run.err
    assert "[base]: chose nvidia/cuda:12.4.1-base-ubuntu22.04: CUDA 12.4.1 matches torch" in run.err
    target = _target(tmp_path)
    assert target["base"]["ref"] == "nvidia/cuda:12.4.1-base-ubuntu22.04"
    assert target["cuda"]["toolkit"] == "12.4.1"
    assert "conflicts" not in target["cuda"]


def test_disagreeing_cuda_and_cudnn_copies_are_recorded(
    lock_cli: LockCli, tmp_path: Path, indexes: IndexServer, registry: Registry
) -> None:
    tag = "12.6.3-cudnn-runtime-ubuntu22.04"
    registry.push_image("nvidia/cuda", tag, _cuda_image("12.6.3", "9.5.1.17-1"))
    _spec(tmp_path, indexes, ["torch==2.5.1"], '[gpu]\ndevices = ["A100"]')
    with (tmp_path / "reprolock.toml").open("a") as spec:
        spec.write(
            f'[base]\nref = "nvidia/cuda:{tag}"\n'
            f'[registry]\nmirrors = {{ "docker.io" = "{registry.host}" }}\n'
        )
    run = lock_cli("lock")
    assert run.code == 0, run.err
    cuda = _target(tmp_path)["cuda"]
    assert cuda["toolkit"] == "12.6.3"
    assert cuda["cudnn"] == "9.1.0.70"
    assert cuda["conflicts"] == [
        "two CUDA runtimes: the base image has CUDA 12.6.3 and nvidia-cuda-runtime-cu12 "
        "12.4.127 brings CUDA 12.4; the framework loads the wheel's, the base image's is "
        "unused weight (pick a matching or a non-CUDA base)",
        "two cuDNN copies: the base image has cuDNN 9.5.1.17 and nvidia-cudnn-cu12 9.1.0.70 "
        "is installed; one process loads one libcudnn",
    ]


def test_explain_says_the_companion_bound_keeps_a_newer_companion_out(
    lock_cli: LockCli, tmp_path: Path, indexes: IndexServer
) -> None:
    _spec(tmp_path, indexes, ["torch==2.5.1", "torchaudio"], '[gpu]\ndevices = ["A100"]')
    run = lock_cli("lock")
    assert run.code == 0, run.err
    assert "chosen;" not in run.err  # a companion bound is the stack's choice, not a downgrade
    run = lock_cli("explain", "torchaudio")
    assert run.code == 0, run.err
    assert (
        "  chosen: 2.5.1  torchaudio-2.5.1-cp311-cp311-manylinux_2_17_x86_64.whl\n"
        "  required by: the spec\n"
        "  newer versions (1), the first rule that excluded each:\n"
        "    2.11.0: companion bound: torchaudio 2.11.0 goes with torch<2.12,>=2.11 (the "
        "companion table), and torch 2.5.1 is locked\n"
    ) in run.out
