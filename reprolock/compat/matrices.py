"""Load the tables in ``matrices/``, each once and only when first used, with the knowledge
version."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reprolock.compat.cuda import CudaTable
    from reprolock.compat.frameworks import JaxTable, TensorflowTable, TorchTable
    from reprolock.compat.gpus import GpuTable
    from reprolock.compat.images import CudnnTable, ImageCatalog
    from reprolock.compat.ptx import PtxTable
    from reprolock.compat.python_images import PythonCatalog
    from reprolock.compat.requires import RequiresTable


class Matrices:
    """All compatibility tables, and the version that enters a lock's inputs-hash.

    A table is parsed on its first use: the tables are 250 kB of TOML (about 0.1 s to read
    them all), and many commands need few or none of them (a lock that is already up to date
    needs only the version; a spec without GPUs never looks a GPU name up).
    """

    def __init__(self, read: Callable[[str], str]) -> None:
        self._read = read
        self.version = str(self._table("matrices.toml")["version"])

    def _table(self, name: str) -> dict[str, object]:
        return tomllib.loads(self._read(name))

    @cached_property
    def gpus(self) -> GpuTable:
        from reprolock.compat.gpus import GpuTable  # noqa: PLC0415

        return GpuTable.from_dict(self._table("gpus.toml"))

    @cached_property
    def cuda(self) -> CudaTable:
        from reprolock.compat.cuda import CudaTable  # noqa: PLC0415

        return CudaTable.from_dict(self._table("cuda.toml"))

    @cached_property
    def torch(self) -> TorchTable:
        from reprolock.compat.frameworks import TorchTable  # noqa: PLC0415

        return TorchTable.from_dict(self._table("pytorch.toml"))

    @cached_property
    def tensorflow(self) -> TensorflowTable:
        from reprolock.compat.frameworks import TensorflowTable  # noqa: PLC0415

        return TensorflowTable.from_dict(self._table("tensorflow.toml"))

    @cached_property
    def jax(self) -> JaxTable:
        from reprolock.compat.frameworks import JaxTable  # noqa: PLC0415

        return JaxTable.from_dict(self._table("jax.toml"))

    @cached_property
    def cudnn(self) -> CudnnTable:
        from reprolock.compat.images import CudnnTable  # noqa: PLC0415

        return CudnnTable.from_dict(self._table("cudnn.toml"))

    @cached_property
    def images(self) -> ImageCatalog:
        from reprolock.compat.images import ImageCatalog  # noqa: PLC0415

        return ImageCatalog.from_dict(self._table("images.toml"))

    @cached_property
    def python(self) -> PythonCatalog:
        from reprolock.compat.python_images import PythonCatalog  # noqa: PLC0415

        return PythonCatalog.from_dict(self._table("python.toml"))

    @cached_property
    def requires(self) -> RequiresTable:
        from reprolock.compat.requires import RequiresTable  # noqa: PLC0415

        return RequiresTable.from_dict(self._table("requires.toml"))

    @cached_property
    def ptx(self) -> PtxTable:
        from reprolock.compat.ptx import PtxTable  # noqa: PLC0415

        return PtxTable.from_dict(self._table("ptx.toml"))


def load_matrices(read: Callable[[str], str]) -> Matrices:
    """`Matrices` read through ``read(name)``, which returns the text of ``matrices/name``;
    each table is parsed when first used."""
    return Matrices(read)
