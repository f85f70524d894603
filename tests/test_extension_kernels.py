"""CUDA extensions in the lock: ``lock --measure-kernels`` measures every locked binary wheel
that builds on a framework or on NVIDIA's wheels (here a wheel whose shared object nvcc built:
tests/data/fatbin), records its kernels in ``cuda.extensions`` and refuses one that cannot
run a GPU of the fleet; a later lock keeps the measurement of the same file and judges it
again."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reprolock import api
from reprolock.compat.arches import ArchList
from reprolock.compat.fatbin import Kernels, Ptx
from reprolock.model import ComputeCapability, CudaVersion
from reprolock.spec.parse import parse_spec
from reprolock.stack.extensions import judge_extension, library_for
from tests.conftest import Run
from tests.pyindex import IndexServer

FIXTURES = Path(__file__).parent / "data" / "fatbin"
X86 = "cp311-cp311-manylinux_2_17_x86_64"
ANY_LINUX = "py3-none-manylinux2014_x86_64"
MATRICES = api.shipped_matrices()

LockCli = Callable[..., Run]


@pytest.fixture
def index(index_server: IndexServer, tmp_path: Path) -> IndexServer:
    pypi = index_server.add_index("pypi", tmp_path / "pypi")
    pypi.wheel("torch", "2.5.1", requires=["nvidia-cuda-runtime-cu12==12.4.127"], tag=X86)
    pypi.wheel("nvidia-cuda-runtime-cu12", "12.4.127", tag=ANY_LINUX)
    # sm_75 and sm_80 SASS, PTX compute_90 of ISA 9.0 (CUDA 13.0)
    pypi.wheel(
        "attnext",
        "1.0",
        requires=["torch"],
        tag=X86,
        extra_files={"attnext/_C.so": (FIXTURES / "libsass75-80_ptx90.so").read_bytes()},
    )
    pypi.wheel("purehelper", "1.0", requires=["torch"])  # py3-none-any: nothing to measure
    return index_server


def _spec(tmp_path: Path, server: IndexServer, gpu: str) -> None:
    (tmp_path / "reprolock.toml").write_text(
        '[environment]\npython = "3.11"\n\n'
        f"[gpu]\n{gpu}\n\n"
        '[python]\nrequirements = ["torch==2.5.1", "attnext", "purehelper"]\n'
        f'[[python.index]]\nname = "pypi"\nurl = "{server.url("pypi")}"\ndefault = true\n'
    )


def _cuda(tmp_path: Path) -> dict[str, Any]:
    lock = tomllib.loads((tmp_path / "reprolock.lock").read_text())
    cuda: dict[str, Any] = lock["targets"][0]["cuda"]
    return cuda


def test_lock_measures_the_extensions_and_records_their_kernels(
    lock_cli: LockCli, tmp_path: Path, index: IndexServer
) -> None:
    _spec(tmp_path, index, 'devices = ["A100", "T4"]')
    run = lock_cli("lock", "--measure-kernels")
    assert run.code == 0, run.err
    [ext] = _cuda(tmp_path)["extensions"]
    assert ext["name"] == "attnext" and ext["version"] == "1.0"
    assert ext["library"] == "attnext/_C.so"
    assert ext["arches"] == ["sm_75", "sm_80"] and ext["ptx"] == ["compute_90"]
    assert ext["ptx-isa"] == "9.0"
    assert ext["measured"].startswith("attnext-1.0-cp311-cp311-manylinux_2_17_x86_64.whl sha256:")
    assert ext["coverage"] == {"A100": "native sm_80", "T4": "native sm_75"}
    assert "measured attnext-1.0" in run.err
    # Without the flag, a plain lock of other inputs keeps the measurement of the same file
    # and judges it again: a V100 has neither SASS nor PTX it can use.
    _spec(tmp_path, index, 'devices = ["A100", "V100"]')
    again = lock_cli("lock")
    assert again.code == 3, again.err
    assert "attnext 1.0 has no kernels for sm_70 (V100)" in again.err
    assert "unknown-coverage" in again.err


def test_an_extension_without_kernels_for_a_gpu_is_refused_unless_warned(
    lock_cli: LockCli, tmp_path: Path, index: IndexServer
) -> None:
    _spec(tmp_path, index, 'devices = ["V100"]')
    run = lock_cli("lock", "--measure-kernels")
    assert run.code == 3, run.err
    assert "attnext 1.0 has no kernels for sm_70 (V100)" in run.err
    assert not (tmp_path / "reprolock.lock").exists()
    _spec(tmp_path, index, 'devices = ["V100"]\nunknown-coverage = "warn"')
    run = lock_cli("lock", "--measure-kernels")
    assert run.code == 0, run.err
    assert "accepted" in run.err
    assert _cuda(tmp_path)["extensions"][0]["coverage"] == {"V100": "no kernels"}


def test_ptx_the_fleet_driver_cannot_jit_is_refused(
    lock_cli: LockCli, tmp_path: Path, index: IndexServer
) -> None:
    # H100 runs attnext only through its PTX of ISA 9.0, which needs CUDA 13.0's driver
    _spec(tmp_path, index, 'devices = ["H100"]\ndriver = "560.35.03"')
    run = lock_cli("lock", "--measure-kernels")
    assert run.code == 3, run.err
    assert "JIT-compiling its PTX, which needs driver >= 580" in run.err
    _spec(tmp_path, index, 'devices = ["H100"]\ndriver = "580.95.05"')
    run = lock_cli("lock", "--measure-kernels")
    assert run.code == 0, run.err
    assert _cuda(tmp_path)["extensions"][0]["coverage"] == {"H100": "PTX compute_90, JIT-compiled"}


# -- the pure parts ----------------------------------------------------------------------------


def _k(sass: str = "", ptx: str = "") -> Kernels:
    return Kernels(
        sass=tuple(ComputeCapability.parse(s) for s in sass.split()),
        ptx=tuple(Ptx(ComputeCapability.parse(p), "8.5") for p in ptx.split()),
        containers=1,
    )


def test_the_library_built_for_the_targets_cuda_is_the_one_judged() -> None:
    libs = {
        "bnb/libbitsandbytes_cpu.so": Kernels(),
        "bnb/libbitsandbytes_cuda118.so": _k("7.0 8.0"),
        "bnb/libbitsandbytes_cuda121.so": _k("7.5 8.0 9.0"),
        "bnb/libbitsandbytes_cuda128.so": _k("7.5 8.0 9.0 10.0 12.0"),
        "bnb/libbitsandbytes_cuda130.so": _k("7.5 8.0 9.0 10.0 12.0", "12.0"),
    }

    def pick(cuda: str) -> str | None:
        found = library_for(libs, "bitsandbytes", CudaVersion.parse(cuda))
        return None if found is None else found[0].rsplit("_", 1)[-1]

    assert pick("12.1") == "cuda121.so"
    assert pick("12.4.1") == "cuda121.so"  # the newest of its major not newer than it
    assert pick("12.8") == "cuda128.so"
    assert pick("13.0.2") == "cuda130.so"
    assert pick("11.7") is None  # none for its major that old: it cannot load
    assert library_for(libs, "bitsandbytes", None) is None
    plain = {"x/_C.so": _k("8.0"), "x/vendored/libother.so": _k("7.0 8.0 9.0")}
    assert library_for(plain, "x", None) == ("x/_C.so", plain["x/_C.so"])
    assert library_for({"x/_C.so": Kernels()}, "x", None) is None


def test_judging_an_extension_against_the_fleet() -> None:
    spec = parse_spec(
        '[environment]\npython = "3.11"\n[gpu]\ndevices = ["A100", "RTX 4090", "B200"]\n'
        'driver = "570.124.06"\n',
        file="reprolock.toml",
        matrices=MATRICES,
        read_file=lambda n: "",
    )
    assert spec.gpu is not None
    arches = ArchList.parse(["sm_80"], ["sm_80"], ptx_isa="8.0")
    verdict = judge_extension(arches, spec.gpu, MATRICES)
    assert verdict.coverage == (
        ("A100", "native sm_80"),
        ("RTX 4090", "native sm_80"),
        ("B200", "PTX compute_80, JIT-compiled"),
    )
    assert verdict.problems == ()
    newer = ArchList.parse(["sm_80"], ["sm_90"], ptx_isa="9.0")  # CUDA 13.0's ISA
    problems = judge_extension(newer, spec.gpu, MATRICES).problems
    assert len(problems) == 1 and "needs driver >= 580" in problems[0] and "B200" in problems[0]
