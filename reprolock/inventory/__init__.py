"""What an image contains, read by catalogers: each a pure parser over the files it names."""

from reprolock.inventory.build import build_inventory, want_content, want_hash
from reprolock.inventory.model import (
    CudaComponent,
    DebPackage,
    Inventory,
    OsInfo,
    PythonDist,
    PythonEnv,
    RecordIssue,
)

__all__ = [
    "CudaComponent",
    "DebPackage",
    "Inventory",
    "OsInfo",
    "PythonDist",
    "PythonEnv",
    "RecordIssue",
    "build_inventory",
    "want_content",
    "want_hash",
]
