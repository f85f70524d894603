"""`reprolock doctor` on recorded real nvidia-smi outputs (tests/data/nvidia-smi): a stand-in
`nvidia-smi` on PATH replays them, exit codes included."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from reprolock.host.check import evaluate
from reprolock.host.facts import HostFacts, HostGpu, parse_smi_csv
from reprolock.lock import CudaStack, LockedTarget, loads
from reprolock.model import ComputeCapability, DriverVersion, Platform

DATA = Path(__file__).parent / "data" / "nvidia-smi"
GOLDEN = Path(__file__).parent / "golden" / "reprolock.lock"
AMD64 = "py3.11-cu124-ubuntu22.04-amd64"


def _host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str | None, toolkit: bool
) -> None:
    """A PATH with a stand-in nvidia-smi running ``script`` (and nvidia-ctk when ``toolkit``)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if script is not None:
        smi = bin_dir / "nvidia-smi"
        smi.write_text("#!/bin/sh\n" + script)
        smi.chmod(0o755)
    if toolkit:
        ctk = bin_dir / "nvidia-ctk"
        ctk.write_text("#!/bin/sh\nexit 0\n")
        ctk.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    shutil.copy(GOLDEN, tmp_path / "reprolock.lock")


def _replay(name: str) -> str:
    return f"cat {DATA / name}\n"


def _doctor(cli: Any, tmp_path: Path) -> tuple[int, dict[str, Any]]:
    run = cli(
        "--format",
        "json",
        "doctor",
        "--lock",
        "reprolock.lock",
        "--target",
        AMD64,
        "--no-nvml",
        cwd=tmp_path,
    )
    return run.code, json.loads(run.out)


@pytest.mark.parametrize(
    ("recording", "gpu"),
    [
        ("a100-580.csv", "NVIDIA A100-SXM4-80GB (sm_80): native sm_80"),
        ("gb10-580.csv", "NVIDIA GB10 (sm_121): native sm_120"),
        ("rtx5060-580.csv", "NVIDIA GeForce RTX 5060 (sm_120): native sm_120"),
        ("rtx4070-laptop-581.csv", "NVIDIA GeForce RTX 4070 Laptop GPU (sm_89): native sm_86"),
    ],
)
def test_hosts_that_can_run_the_lock(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recording: str, gpu: str
) -> None:
    _host(tmp_path, monkeypatch, _replay(recording), toolkit=True)
    code, report = _doctor(cli, tmp_path)
    assert code == 0, report
    checks = {c["check"]: c for c in report["checks"]}
    assert (
        checks["driver"]["ok"]
        and "runs CUDA 12.4.1 with every feature" in checks["driver"]["message"]
    )
    assert checks["gpu 0"]["message"] == gpu
    assert checks["toolkit"]["ok"]


def test_gpu_without_kernels_fails(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _host(tmp_path, monkeypatch, _replay("quadro-p620-580.csv"), toolkit=True)
    code, report = _doctor(cli, tmp_path)
    assert code == 1
    gpu = next(c for c in report["checks"] if c["check"] == "gpu 0")
    assert gpu["ok"] is False
    assert gpu["message"].startswith("Quadro P620 (sm_61): the locked build has no kernels for it")


def test_old_driver_without_the_compute_cap_field(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = (
        'case "$1" in *compute_cap*) '
        f"cat {DATA / 'old-driver-compute-cap.stderr'} >&2; exit 6;; esac\n"
        + _replay("k80-418-retry.csv")
    )
    _host(tmp_path, monkeypatch, script, toolkit=True)
    code, report = _doctor(cli, tmp_path)
    assert code == 1
    assert report["driver"] == "418.87.00"
    assert report["gpus"] == [{"index": 0, "name": "Tesla K80", "compute-capability": "3.7"}]
    checks = {c["check"]: c for c in report["checks"]}
    assert checks["driver"]["message"].startswith(
        "driver 418.87.00 is older than the lock's floor 525.60.13 for CUDA 12.4.1 (minor policy)"
    )
    assert "(sm_37): the locked build has no kernels" in checks["gpu 0"]["message"]


def test_no_usable_driver(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _host(tmp_path, monkeypatch, f"cat {DATA / 'no-driver.stdout'}\nexit 9\n", toolkit=True)
    code, report = _doctor(cli, tmp_path)
    assert code == 1
    assert report["checks"][0]["message"].startswith(
        "nvidia-smi failed (exit 9): NVIDIA-SMI has failed because it couldn't communicate"
    )


def test_no_nvidia_smi_and_no_toolkit(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _host(tmp_path, monkeypatch, None, toolkit=False)
    code, report = _doctor(cli, tmp_path)
    assert code == 1
    messages = [c["message"] for c in report["checks"]]
    assert messages[0].startswith("nvidia-smi was not found on PATH")
    assert any(m.startswith("the NVIDIA container toolkit was not found") for m in messages)


def test_text_report_and_exit(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _host(tmp_path, monkeypatch, _replay("a100-580.csv"), toolkit=False)
    run = cli("doctor", "--lock", "reprolock.lock", "--target", AMD64, "--no-nvml", cwd=tmp_path)
    assert run.code == 1
    assert f"{AMD64} on this host (nvidia-smi):" in run.out
    assert "  ok   gpu 0: NVIDIA A100-SXM4-80GB (sm_80): native sm_80" in run.out
    assert "  FAIL toolkit:" in run.out
    assert "error: this host cannot run" in run.err


def _target(cuda: CudaStack | None) -> LockedTarget:
    return LockedTarget(id="t", platform=Platform.parse("linux/amd64"), python="3.11", cuda=cuda)


def test_minor_compat_and_ptx_need_the_newer_driver() -> None:
    cuda = CudaStack(
        toolkit="12.8",
        driver_min="570.26",
        driver_min_compat="525.60.13",
        compat="minor",
        arches=("sm_80", "sm_90"),
        ptx=("compute_90",),
    )
    h100 = HostGpu(
        index=0,
        name="H100",
        capability=ComputeCapability(9, 0),
        driver=DriverVersion.parse("535.104.05"),
    )
    b200 = HostGpu(
        index=1,
        name="B200",
        capability=ComputeCapability(10, 0),
        driver=DriverVersion.parse("535.104.05"),
    )
    checks = evaluate(_target(cuda), HostFacts(gpus=[h100, b200], toolkit="nvidia-ctk"))
    by = {c.name: c for c in checks}
    assert by["driver"].ok and "minor-version compatibility" in by["driver"].message
    assert by["gpu 0"].ok
    assert by["gpu 1"].ok is False and "needs driver >= 570.26" in by["gpu 1"].message
    assert evaluate(_target(None), HostFacts())[0].ok


def test_a_host_gpu_its_driver_cannot_run_fails_whatever_the_lock_says() -> None:
    from reprolock import api

    m = api.shipped_matrices()
    cuda = CudaStack(
        toolkit="12.4.1",
        driver_min="550.54.15",
        driver_min_compat="525.60.13",
        compat="minor",
        arches=("sm_70", "sm_80", "sm_90"),
        ptx=("compute_90",),
    )

    def gpu(index: int, name: str, cap: tuple[int, int], driver: str) -> HostGpu:
        return HostGpu(
            index=index,
            name=name,
            capability=ComputeCapability(*cap),
            driver=DriverVersion.parse(driver),
        )

    def checks(*gpus: HostGpu) -> dict[str, tuple[bool | None, str]]:
        found = evaluate(
            _target(cuda),
            HostFacts(gpus=list(gpus), toolkit="nvidia-ctk"),
            lambda cap, driver: m.gpus.cannot_run(cap, driver, m.cuda),
        )
        return {c.name: (c.ok, c.message) for c in found if c.name.startswith("gpu")}

    # sm_120 has PTX from compute_90 in the lock, but R550 predates Blackwell altogether
    blackwell = checks(gpu(0, "NVIDIA GeForce RTX 5090", (12, 0), "550.54.15"))
    assert blackwell["gpu 0"][0] is False
    assert "needs driver >= 570.26 to run at all" in blackwell["gpu 0"][1]
    # R580 is Volta's last branch: a 590 driver does not run a V100 even with sm_70 kernels
    volta = checks(gpu(0, "Tesla V100-SXM2-32GB", (7, 0), "590.44.01"))
    assert volta["gpu 0"][0] is False and "R580 is the last driver branch" in volta["gpu 0"][1]
    assert checks(gpu(0, "NVIDIA H100 80GB HBM3", (9, 0), "550.54.15"))["gpu 0"][0] is True


def test_smi_csv_parsing() -> None:
    gpus = parse_smi_csv((DATA / "gb10-580.csv").read_text())
    assert [(g.name, str(g.capability), str(g.driver)) for g in gpus] == [
        ("NVIDIA GB10", "12.1", "580.159.03")
    ]
    two = parse_smi_csv("name, compute_cap, driver_version\nA, 8.0, 535.1\nB, [N/A], 535.1\n")
    assert [g.capability for g in two] == [ComputeCapability(8, 0), None]
    with pytest.raises(ValueError, match="unexpected nvidia-smi output"):
        parse_smi_csv("garbage\n")
    assert loads(GOLDEN.read_text(), file="x").lock.target(AMD64) is not None


def test_nvml_is_read_when_nvidia_ml_py_is_installed(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NVML cannot be stood in for without a GPU: a module with pynvml's API (the values an
    H100 host reports) takes its place, and nvidia-smi is then not asked."""
    import types

    fake = types.ModuleType("pynvml")
    calls: list[str] = []
    fake.nvmlInit = lambda: calls.append("init")  # type: ignore[attr-defined]
    fake.nvmlShutdown = lambda: calls.append("shutdown")  # type: ignore[attr-defined]
    fake.nvmlSystemGetDriverVersion = lambda: "550.54.15"  # type: ignore[attr-defined]
    fake.nvmlDeviceGetCount = lambda: 2  # type: ignore[attr-defined]
    fake.nvmlDeviceGetHandleByIndex = lambda i: i  # type: ignore[attr-defined]
    fake.nvmlDeviceGetName = lambda h: b"NVIDIA H100 80GB HBM3"  # type: ignore[attr-defined]
    fake.nvmlDeviceGetCudaComputeCapability = lambda h: (9, 0)  # type: ignore[attr-defined]
    monkeypatch.setitem(__import__("sys").modules, "pynvml", fake)
    _host(tmp_path, monkeypatch, "exit 99\n", toolkit=True)  # nvidia-smi would fail
    run = cli(
        "--format", "json", "doctor", "--lock", "reprolock.lock", "--target", AMD64, cwd=tmp_path
    )
    assert run.code == 0, run.out
    report = json.loads(run.out)
    assert report["source"] == "nvml" and report["driver"] == "550.54.15"
    assert [g["compute-capability"] for g in report["gpus"]] == ["9.0", "9.0"]
    assert calls == ["init", "shutdown"]
