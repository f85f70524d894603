"""CUDA → driver questions answered from matrices/cuda.toml."""

from __future__ import annotations

import json

import pytest

from reprolock import api
from reprolock.model import CudaVersion, DriverVersion
from tests.conftest import Cli

MATRICES = api.shipped_matrices()
TABLE = MATRICES.cuda


@pytest.mark.parametrize(
    ("cuda", "strict", "minor"),
    [
        ("12.4.1", "550.54.15", "525.60.13"),
        ("12.4", "550.54.14", "525.60.13"),  # no patch: its oldest release
        ("11.8.0", "520.61.05", "450.80.02"),
        ("13.0.0", "580.65.06", "580.65.06"),
        ("10.2", "440.33", "440.33"),  # no minor-version compatibility before CUDA 11
    ],
)
def test_driver_needs(cuda: str, strict: str, minor: str) -> None:
    assert str(TABLE.need(CudaVersion.parse(cuda), "strict").driver) == strict
    assert str(TABLE.need(CudaVersion.parse(cuda), "minor").driver) == minor


def test_unknown_cuda_version() -> None:
    with pytest.raises(ValueError, match=r"CUDA 9\.0 is not in reprolock's table"):
        TABLE.need(CudaVersion.parse("9.0"), "strict")


def test_runnable_by_a_driver() -> None:
    rows = {
        str(t.version): (strict, minor)
        for t, strict, minor in TABLE.runnable(DriverVersion.parse("535.104.05"))
    }
    assert rows["12.2.2"] == (True, True)
    assert rows["12.4.1"] == (False, True)  # minor-version compatibility only
    assert rows["13.0.0"] == (False, False)  # another major needs a newer driver
    assert rows["11.8.0"] == (True, True)


def test_matrix_commands(cli: Cli) -> None:
    run = cli("--format", "json", "matrix", "cuda", "12.4.1")
    assert json.loads(run.out)["strict"] == "550.54.15"
    run = cli("matrix", "driver", "535.104.05")
    assert run.out.splitlines()[:3] == [
        "driver 535.104.05:",
        "  strict (every feature): up to CUDA 12.2.2",
        "  minor-version compat:   also CUDA 12.3.0 … 12.9.1",
    ]
    run = cli("matrix", "driver", "latest")
    assert run.code == 2
    assert run.err.startswith('error: "latest" is not a driver version')


def test_floor_is_the_maximum_over_base_and_wheels() -> None:
    from reprolock.lock import PythonPackage
    from reprolock.spec import CompatPolicy, GpuSpec
    from reprolock.stack.check import decide_stack

    packages = [
        PythonPackage(name="nvidia-cuda-runtime-cu12", version="12.1.105", index="i"),
        PythonPackage(name="nvidia-nccl-cu12", version="2.21.5", index="i"),
    ]
    gpu = GpuSpec(devices=(), driver=None, cuda=None, cudnn=None, compat=CompatPolicy.STRICT)
    stack = decide_stack("t", packages, {"CUDA_VERSION": "12.4.1"}, gpu, MATRICES)
    assert stack is not None
    assert (stack.toolkit, stack.driver_min, stack.driver_min_compat, stack.nccl) == (
        "12.4.1",
        "550.54.15",
        "525.60.13",
        "2.21.5",
    )
    assert decide_stack("t", [], {}, gpu, MATRICES) is None


def test_cuda_toolkit_metapackage_counts() -> None:
    from reprolock.lock import PythonPackage
    from reprolock.stack.check import components

    found = components([PythonPackage(name="cuda-toolkit", version="13.0.2", index="i")], {})
    assert [(str(c.cuda), c.source) for c in found] == [("13.0", "cuda-toolkit 13.0.2")]
