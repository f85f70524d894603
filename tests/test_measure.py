"""``reprolock matrix measure`` against a loopback index serving a wheel whose shared
object was built by nvcc (tests/data/fatbin)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from tests.conftest import Cli
from tests.pyindex import IndexServer

FIXTURES = Path(__file__).parent / "data" / "fatbin"


def _index(index_server: IndexServer, tmp_path: Path) -> tuple[str, Path]:
    index = index_server.add_index("cuda", tmp_path / "cuda")
    wheel = index.wheel(
        "cudaext",
        "1.0",
        tag="cp311-cp311-manylinux_2_28_x86_64",
        requires=["nvidia-cuda-runtime-cu12==12.8.90; platform_machine == 'x86_64'"],
        extra_files={
            "cudaext/libkernels.so": (FIXTURES / "libsass75-80_ptx90.so").read_bytes(),
            "cudaext/libarch.so.1": (FIXTURES / "libsass90a-100f-120_ptx120.so").read_bytes(),
        },
    )
    return index_server.url("cuda"), wheel


def test_measure_prints_the_row_citing_the_file(
    cli: Cli, tmp_path: Path, index_server: Any
) -> None:
    url, wheel = _index(index_server, tmp_path)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    cache = str(tmp_path / "cache")
    run = cli("--cache-dir", cache, "matrix", "measure", "cudaext==1.0", "--index", url)
    assert run.code == 0, run.err
    assert "cudaext/libkernels.so: sm_75 sm_80, PTX compute_90 (ISA 9.0) (2 fatbins)" in run.out
    assert "cudaext/libarch.so.1: sm_90a sm_100f sm_120, PTX compute_120 (ISA 9.0)" in run.out
    assert "pins CUDA runtime 12.8.90" in run.out
    assert 'sass = ["7.5", "8.0"]' in run.out or 'sass = ["9.0a", "10.0f", "12.0"]' in run.out
    assert f'measured = "{wheel.name} sha256:{digest}"' in run.out
    # Cached by the wheel's sha256: offline, nothing is downloaded again.
    again = cli(
        "--cache-dir",
        cache,
        "--offline",
        "--format",
        "json",
        "matrix",
        "measure",
        "cudaext==1.0",
        "--index",
        url,
    )
    assert again.code == 0, again.err
    data = json.loads(again.out)
    assert data["sha256"] == digest and data["cuda"] == "12.8.90"
    assert data["libraries"]["cudaext/libkernels.so"]["sass"] == ["7.5", "8.0"]


def test_measure_bad_requests(cli: Cli, tmp_path: Path, index_server: Any) -> None:
    url, _wheel = _index(index_server, tmp_path)
    cache = str(tmp_path / "cache")
    loose = cli("--cache-dir", cache, "matrix", "measure", "cudaext>=1", "--index", url)
    assert loose.code == 2 and "does not name one version" in loose.err
    missing = cli("--cache-dir", cache, "matrix", "measure", "cudaext==2.0", "--index", url)
    assert missing.code == 2 and "cudaext 2.0 has no wheel" in missing.err
    arm = cli(
        "--cache-dir",
        cache,
        "matrix",
        "measure",
        "cudaext==1.0",
        "--index",
        url,
        "--platform",
        "linux/arm64",
    )
    assert arm.code == 2
    assert "its wheels: cudaext-1.0-cp311-cp311-manylinux_2_28_x86_64.whl" in arm.err
