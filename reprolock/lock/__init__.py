"""The lockfile: model, codec, atomic I/O and freshness."""

from reprolock.lock.codec import Decoded, dumps, from_dict, loads, to_dict
from reprolock.lock.freshness import Inputs, inputs_of, new_lockfile, stale_reasons
from reprolock.lock.integrity import Integrity
from reprolock.lock.model import (
    LOCK_VERSION,
    AptPackage,
    BaseChoice,
    BaseFacts,
    BasePython,
    CudaStack,
    ExtensionKernels,
    Interpreter,
    InterpreterSource,
    LockedBase,
    LockedDowngrade,
    LockedHealthcheck,
    LockedImage,
    LockedTarget,
    Lockfile,
    PythonPackage,
    Wheel,
)

__all__ = [
    "LOCK_VERSION",
    "AptPackage",
    "BaseChoice",
    "BaseFacts",
    "BasePython",
    "CudaStack",
    "Decoded",
    "ExtensionKernels",
    "Inputs",
    "Integrity",
    "Interpreter",
    "InterpreterSource",
    "LockedBase",
    "LockedDowngrade",
    "LockedHealthcheck",
    "LockedImage",
    "LockedTarget",
    "Lockfile",
    "PythonPackage",
    "Wheel",
    "dumps",
    "from_dict",
    "inputs_of",
    "loads",
    "new_lockfile",
    "stale_reasons",
    "to_dict",
]
