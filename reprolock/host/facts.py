"""What a GPU host reports: its driver and GPUs (from nvidia-smi or NVML)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from reprolock.model import ComputeCapability, DriverVersion

SMI_FIELDS = ("name", "compute_cap", "driver_version")
SMI_FIELDS_OLD = ("name", "driver_version")  # drivers older than the compute_cap field


@dataclass(frozen=True, slots=True, kw_only=True)
class HostGpu:
    index: int
    name: str
    capability: ComputeCapability | None  # None when the driver cannot tell
    driver: DriverVersion | None


@dataclass(slots=True, kw_only=True)
class HostFacts:
    gpus: list[HostGpu] = field(default_factory=list)
    source: str = "nvidia-smi"
    error: str | None = None  # why no GPU could be read
    toolkit: str | None = None  # how the NVIDIA container toolkit was found

    @property
    def driver(self) -> DriverVersion | None:
        return next((g.driver for g in self.gpus if g.driver is not None), None)


def parse_smi_csv(text: str) -> list[HostGpu]:
    """``nvidia-smi --query-gpu=... --format=csv`` (with its header): one GPU per row.

    Raises ValueError for output that is not such a table."""
    rows = [r for r in csv.reader(io.StringIO(text), skipinitialspace=True) if r]
    if not rows:
        raise ValueError("nvidia-smi printed no GPU")
    header = [h.strip().split(" [", 1)[0] for h in rows[0]]
    if "name" not in header or "driver_version" not in header:
        raise ValueError(f"unexpected nvidia-smi output: {text.strip()[:200]}")
    out = []
    for index, row in enumerate(rows[1:]):
        values = dict(zip(header, (v.strip() for v in row), strict=False))
        cap_text = values.get("compute_cap", "")
        capability = None
        if cap_text and not cap_text.startswith("["):
            try:
                capability = ComputeCapability.parse(cap_text)
            except ValueError:
                capability = None
        driver = None
        try:
            driver = DriverVersion.parse(values.get("driver_version", ""))
        except ValueError:
            driver = None
        out.append(
            HostGpu(index=index, name=values.get("name", "?"), capability=capability, driver=driver)
        )
    if not out:
        raise ValueError("nvidia-smi printed no GPU")
    return out
