"""Load every table in ``matrices/`` once, with the knowledge version."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass

from reprolock.compat.cuda import CudaTable
from reprolock.compat.frameworks import JaxTable, TensorflowTable, TorchTable
from reprolock.compat.gpus import GpuTable
from reprolock.compat.images import CudnnTable, ImageCatalog
from reprolock.compat.ptx import PtxTable
from reprolock.compat.python_images import PythonCatalog
from reprolock.compat.requires import RequiresTable


@dataclass(frozen=True, slots=True, kw_only=True)
class Matrices:
    """All compatibility tables, and the version that enters a lock's inputs-hash."""

    version: str
    gpus: GpuTable
    cuda: CudaTable
    torch: TorchTable
    tensorflow: TensorflowTable
    jax: JaxTable
    cudnn: CudnnTable
    images: ImageCatalog
    python: PythonCatalog
    requires: RequiresTable
    ptx: PtxTable


def load_matrices(read: Callable[[str], str]) -> Matrices:
    """Build `Matrices` from ``read(name)``, which returns the text of ``matrices/name``."""

    def table(name: str) -> dict[str, object]:
        return tomllib.loads(read(name))

    meta = table("matrices.toml")
    return Matrices(
        version=str(meta["version"]),
        gpus=GpuTable.from_dict(table("gpus.toml")),
        cuda=CudaTable.from_dict(table("cuda.toml")),
        torch=TorchTable.from_dict(table("pytorch.toml")),
        tensorflow=TensorflowTable.from_dict(table("tensorflow.toml")),
        jax=JaxTable.from_dict(table("jax.toml")),
        cudnn=CudnnTable.from_dict(table("cudnn.toml")),
        images=ImageCatalog.from_dict(table("images.toml")),
        python=PythonCatalog.from_dict(table("python.toml")),
        requires=RequiresTable.from_dict(table("requires.toml")),
        ptx=PtxTable.from_dict(table("ptx.toml")),
    )
