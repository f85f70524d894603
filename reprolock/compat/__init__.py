"""The compatibility knowledge in ``matrices/``, as typed tables and pure questions."""

from reprolock.compat.gpus import GpuModel, GpuTable
from reprolock.compat.matrices import Matrices, load_matrices

__all__ = ["GpuModel", "GpuTable", "Matrices", "load_matrices"]
