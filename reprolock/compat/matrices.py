"""Load every table in ``matrices/`` once, with the knowledge version."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass

from reprolock.compat.cuda import CudaTable
from reprolock.compat.gpus import GpuTable


@dataclass(frozen=True, slots=True, kw_only=True)
class Matrices:
    """All compatibility tables, and the version that enters a lock's inputs-hash."""

    version: str
    gpus: GpuTable
    cuda: CudaTable


def load_matrices(read: Callable[[str], str]) -> Matrices:
    """Build `Matrices` from ``read(name)``, which returns the text of ``matrices/name``."""
    meta = tomllib.loads(read("matrices.toml"))
    return Matrices(
        version=str(meta["version"]),
        gpus=GpuTable.from_dict(tomllib.loads(read("gpus.toml"))),
        cuda=CudaTable.from_dict(tomllib.loads(read("cuda.toml"))),
    )
