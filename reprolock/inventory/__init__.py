"""What an image contains, read by catalogers: each a pure parser over the files it names."""

from reprolock.inventory.build import (
    build_inventory,
    want_content,
    want_hash,
    want_head,
    want_kernels,
    want_md5,
    want_source,
)
from reprolock.inventory.model import (
    CudaComponent,
    DataFile,
    DebPackage,
    DpkgIntegrity,
    DpkgIssue,
    Inventory,
    LibraryKernels,
    OsInfo,
    PackageKernels,
    PythonDist,
    PythonEnv,
    RecordIssue,
)

__all__ = [
    "CudaComponent",
    "DataFile",
    "DebPackage",
    "DpkgIntegrity",
    "DpkgIssue",
    "Inventory",
    "LibraryKernels",
    "OsInfo",
    "PackageKernels",
    "PythonDist",
    "PythonEnv",
    "RecordIssue",
    "build_inventory",
    "want_content",
    "want_hash",
    "want_head",
    "want_kernels",
    "want_md5",
    "want_source",
]
