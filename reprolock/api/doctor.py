"""``reprolock doctor``: can this GPU host run the locked target?"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from reprolock.api.export import locate_lock, pick_target
from reprolock.api.project import read_lock, shipped_matrices
from reprolock.host.check import HostCheck, evaluate, with_capabilities
from reprolock.host.facts import SMI_FIELDS, SMI_FIELDS_OLD, HostFacts, HostGpu, parse_smi_csv
from reprolock.lock import LockedTarget
from reprolock.model import ComputeCapability, DriverVersion

TOOLKIT_CONFIG = Path("/etc/nvidia-container-runtime/config.toml")


@dataclass(frozen=True, slots=True, kw_only=True)
class DoctorReport:
    target: LockedTarget
    facts: HostFacts
    checks: list[HostCheck]

    @property
    def ok(self) -> bool:
        return all(c.ok is not False for c in self.checks)


def _smi(
    binary: str, fields: tuple[str, ...], env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary, f"--query-gpu={','.join(fields)}", "--format=csv"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env=dict(env),
    )


def probe_smi(binary: str | None, env: Mapping[str, str]) -> HostFacts:
    """The GPUs nvidia-smi reports; drivers older than the compute_cap field are asked
    again without it."""
    if binary is None:
        return HostFacts(error="nvidia-smi was not found on PATH (no NVIDIA driver installed?)")
    result = _smi(binary, SMI_FIELDS, env)
    if result.returncode != 0 and "not a valid field" in (result.stderr + result.stdout):
        result = _smi(binary, SMI_FIELDS_OLD, env)
    if result.returncode != 0:
        message = (result.stdout + result.stderr).strip().splitlines()
        return HostFacts(
            error=f"nvidia-smi failed (exit {result.returncode}): "
            + (message[0] if message else "no output")
        )
    try:
        return HostFacts(gpus=parse_smi_csv(result.stdout))
    except ValueError as exc:
        return HostFacts(error=str(exc))


def probe_nvml() -> HostFacts | None:
    """The GPUs NVML reports, when nvidia-ml-py is installed; None otherwise."""
    try:
        import pynvml  # type: ignore[import-not-found]  # noqa: PLC0415
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception as exc:
        return HostFacts(source="nvml", error=f"NVML could not start: {exc}")
    try:
        driver_text = pynvml.nvmlSystemGetDriverVersion()
        driver = DriverVersion.parse(
            driver_text.decode() if isinstance(driver_text, bytes) else str(driver_text)
        )
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
            gpus.append(
                HostGpu(
                    index=index,
                    name=name.decode() if isinstance(name, bytes) else str(name),
                    capability=ComputeCapability(int(major), int(minor)),
                    driver=driver,
                )
            )
        return HostFacts(gpus=gpus, source="nvml")
    finally:
        pynvml.nvmlShutdown()


def find_toolkit(env: Mapping[str, str]) -> str | None:
    path = env.get("PATH")
    for tool in ("nvidia-container-cli", "nvidia-ctk", "nvidia-container-runtime"):
        found = shutil.which(tool, path=path)
        if found:
            return found
    return str(TOOLKIT_CONFIG) if TOOLKIT_CONFIG.exists() else None


def doctor(
    spec_path: Path | None,
    lock_path: Path | None,
    *,
    cwd: Path,
    target_id: str | None,
    nvidia_smi: str | None = None,
    use_nvml: bool = True,
    env: Mapping[str, str] | None = None,
) -> DoctorReport:
    env = dict(os.environ if env is None else env)
    path = locate_lock(spec_path, lock_path, cwd)
    lock, _ = read_lock(path)
    target = pick_target(lock, path, target_id)
    facts = probe_nvml() if use_nvml else None
    if facts is None or facts.error:
        facts = probe_smi(nvidia_smi or shutil.which("nvidia-smi", path=env.get("PATH")), env)
    facts.toolkit = find_toolkit(env)
    matrices = shipped_matrices()
    facts = with_capabilities(facts, matrices.gpus)
    checks = evaluate(
        target, facts, lambda cap, driver: matrices.gpus.cannot_run(cap, driver, matrices.cuda)
    )
    return DoctorReport(target=target, facts=facts, checks=checks)
