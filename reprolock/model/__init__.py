"""Small shared value types with no I/O: parsed once, frozen, ordered."""

from reprolock.model.digest import Digest
from reprolock.model.gpu import ComputeCapability
from reprolock.model.image_ref import ImageRef
from reprolock.model.platform import Platform
from reprolock.model.versions import CudaVersion, DriverVersion, PythonVersion

__all__ = [
    "ComputeCapability",
    "CudaVersion",
    "Digest",
    "DriverVersion",
    "ImageRef",
    "Platform",
    "PythonVersion",
]
