"""The CUDA stack in the lock: the driver floor from what was resolved, checked against the
fleet's oldest driver (loopback index, real wheels)."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Run
from tests.pyindex import IndexServer

LockCli = Callable[..., Run]


def _spec(tmp_path: Path, server: IndexServer, gpu: str) -> None:
    (tmp_path / "reprolock.toml").write_text(
        f'[environment]\npython = "3.11"\n\n[gpu]\ndevices = ["H100", "8.0"]\n{gpu}\n'
        '[python]\nrequirements = ["gpuframework"]\n'
        f'[[python.index]]\nname = "local"\nurl = "{server.url("local")}"\ndefault = true\n'
    )


@pytest.fixture
def cuda_index(index_server: IndexServer, tmp_path: Path) -> IndexServer:
    idx = index_server.add_index("local", tmp_path / "local")
    idx.wheel(
        "gpuframework",
        "2.5.1",
        requires=["nvidia-cuda-runtime-cu12==12.4.127", "nvidia-cudnn-cu12==9.1.0.70"],
    )
    idx.wheel("nvidia-cuda-runtime-cu12", "12.4.127", tag="py3-none-manylinux2014_x86_64")
    idx.wheel("nvidia-cudnn-cu12", "9.1.0.70", tag="py3-none-manylinux2014_x86_64")
    return index_server


def test_driver_floor_from_the_resolved_runtime_wheel(
    lock_cli: LockCli, tmp_path: Path, cuda_index: IndexServer
) -> None:
    _spec(tmp_path, cuda_index, 'driver = "535.104.05"\ncompat = "minor"')
    run = lock_cli("lock")
    assert run.code == 0, run.err
    cuda = tomllib.loads((tmp_path / "reprolock.lock").read_text())["targets"][0]["cuda"]
    # cudart 12.4.127 is CUDA 12.4 Update 1 (12.4.1): its driver, not 12.4 GA's (issue 16).
    assert cuda == {
        "toolkit": "12.4.1",
        "cudnn": "9.1.0.70",
        "driver-min": "550.54.15",
        "driver-min-compat": "525.60.13",
        "compat": "minor",
        "devices": {"8.0": "sm_80", "H100": "sm_90"},
    }


def test_fleet_driver_too_old(lock_cli: LockCli, tmp_path: Path, cuda_index: IndexServer) -> None:
    _spec(tmp_path, cuda_index, 'driver = "535.104.05"\ncompat = "strict"')
    run = lock_cli("lock")
    # The driver bounds the CUDA runtime wheels while resolving: the resolver says which
    # requirement pins a CUDA the fleet cannot run, and why that bound holds.
    assert run.code == 3
    assert "gpuframework==2.5.1 requires nvidia-cuda-runtime-cu12==12.4.127" in run.err
    assert (
        "Only nvidia-cuda-runtime-cu12<12.3 is allowed: the fleet's oldest driver 535.104.05 "
        "runs CUDA <12.3 under the strict policy." in run.err
    )
    _spec(tmp_path, cuda_index, 'driver = "470.82.01"\ncompat = "minor"')
    run = lock_cli("lock")
    assert run.code == 3
    # An R470 driver cannot run an H100 at all (Hopper first runs with CUDA 11.8, R520):
    # said before anything is resolved, and the fix names a driver that runs the GPUs.
    assert "sm_90 (H100) needs driver >= 520.61.05: Hopper first runs with CUDA 11.8" in run.err
    assert "Upgrade the fleet to driver >= 520.61.05" in run.err
    assert not (tmp_path / "reprolock.lock").exists()
