"""`reprolock explain [TARGET]` and `reprolock matrix torch|driver` over the shipped tables
(offline: no index, no registry)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import Run

SPEC = """\
[environment]
python = "3.11"
platforms = ["linux/amd64", "linux/arm64"]

[gpu]
devices = ["A100", "H100"]
driver = "535.104.05"
compat = "strict"

[python]
requirements = ["torch>=2.4", "torchvision"]
"""


def test_explain_target_prints_the_decision_path(cli: Any, tmp_path: Path) -> None:
    (tmp_path / "reprolock.toml").write_text(SPEC)
    run: Run = cli("-v", "explain", "py3.11-amd64", cwd=tmp_path)
    assert run.code == 0, run.err
    out = run.out
    assert "py3.11-amd64 (linux/amd64, Python 3.11, GPUs: A100 sm_80, H100 sm_90" in out
    assert (
        "chose torch 2.7.1 (cu118, CUDA 11.8), routed to https://download.pytorch.org/whl/cu118"
        in out
    )
    assert "A100: native sm_80" in out
    assert (
        "torch 2.8.0 .. 2.10.0 (PyPI wheel, CUDA 12.8) uses CUDA 12.8, which needs driver >= "
        "570.26 (strict policy); the fleet's oldest is 535.104.05" in out
    )
    assert "nvidia-cuda-runtime-cu12<12.3: the fleet's oldest driver 535.104.05 runs CUDA" in out
    assert "py3.11-arm64" not in out


def test_explain_without_argument_covers_every_target_and_json(cli: Any, tmp_path: Path) -> None:
    (tmp_path / "reprolock.toml").write_text(SPEC)
    run: Run = cli("--format", "json", "explain", cwd=tmp_path)
    assert run.code == 0, run.err
    data = json.loads(run.out)
    assert [t["target"] for t in data] == ["py3.11-amd64", "py3.11-arm64"]
    amd64, arm64 = data
    assert amd64["frameworks"][0]["chosen"] == "torch 2.7.1 (cu118, CUDA 11.8)"
    assert amd64["routes"] == {"pytorch-cu118": "https://download.pytorch.org/whl/cu118"}
    assert "2.7.1" in amd64["frameworks"][0]["allowed-versions"]
    # linux/arm64: the only CUDA builds with A100 kernels need a newer driver.
    assert "upgrade the fleet to driver >= 560.28.03" in arm64["unsatisfiable"]


def test_matrix_torch_lists_variants_arches_and_default_cuda(cli: Any) -> None:
    run: Run = cli("matrix", "torch", "2.5")
    assert run.code == 0, run.err
    assert "torch 2.5.1: Python 3.9, 3.10, 3.11, 3.12, 3.13; PyPI default CUDA 12.4" in run.out
    assert "companions: torchvision 0.20.1; torchaudio 2.5.1" in run.out
    assert "linux/amd64 cu118  CUDA 11.8" in run.out
    assert "[https://download.pytorch.org/whl/cu124]" in run.out
    run = cli("--format", "json", "matrix", "torch", "2.8.0")
    rows = json.loads(run.out)
    cu129 = next(r for r in rows if r["variant"] == "cu129" and r["platform"] == "linux/amd64")
    # release builds strip +PTX (pytorch/pytorch#157516; matrices/pytorch.toml cites them)
    assert cu129["ptx"] == [] and "sm_120" in cu129["sass"]
    run = cli("matrix", "torch", "9.9")
    assert run.code == 2
    assert run.err.startswith('error: torch "9.9" is not in the matrices reprolock ships.')


def test_matrix_driver_names_the_framework_builds_it_runs(cli: Any) -> None:
    run: Run = cli("matrix", "driver", "535.104.05")
    assert run.code == 0, run.err
    assert "torch (strict): 49 builds, newest torch 2.7.1 (cu118, CUDA 11.8)" in run.out
    assert (
        "tensorflow (minor): 10 builds, newest tensorflow 2.21.0 ([and-cuda], CUDA 12.5)" in run.out
    )
    data = json.loads(cli("--format", "json", "matrix", "driver", "450.80.02").out)
    torch = {f["build"]: f for f in data["frameworks"]}
    assert torch["torch 2.5.1 (cu118, CUDA 11.8)"]["minor-compat"] is True
    assert torch["torch 2.5.1 (cu118, CUDA 11.8)"]["strict"] is False


def test_check_warns_about_an_unsatisfiable_stack_offline(cli: Any, tmp_path: Path) -> None:
    (tmp_path / "reprolock.toml").write_text(SPEC)
    run: Run = cli("check", cwd=tmp_path)
    assert run.code == 0, run.err
    assert "warning: stack: py3.11-arm64: torch 2.4-2.15 has no build that fits" in run.err
    assert "py3.11-amd64" not in run.err
