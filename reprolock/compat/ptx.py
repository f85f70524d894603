"""PTX ISA version → the first CUDA release whose driver can JIT-compile it
(``matrices/ptx.toml``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reprolock.model import CudaVersion


@dataclass(frozen=True, slots=True)
class PtxTable:
    cuda: Mapping[str, CudaVersion]  # "8.3" → 12.3

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PtxTable:
        return cls({str(r["ptx"]): CudaVersion.parse(r["cuda"]) for r in data.get("isa", ())})

    def cuda_for(self, isa: str | None) -> CudaVersion | None:
        """The CUDA whose driver first loads PTX of ISA ``isa``; None when unknown."""
        return None if isa is None else self.cuda.get(isa)
