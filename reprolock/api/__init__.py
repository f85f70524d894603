"""Use cases: wire files, the network and shipped data to the pure stages.

Each function takes paths and options, returns a result value and raises
`ReprolockError` subclasses; the CLI renders both.
"""

from reprolock.api.project import (
    LOCK_NAME,
    SPEC_NAME,
    CheckResult,
    StaleLock,
    check,
    default_lock_path,
    find_spec,
    init,
    load_spec,
    read_lock,
    schema_text,
    shipped_matrices,
    write_lock,
)

__all__ = [
    "LOCK_NAME",
    "SPEC_NAME",
    "CheckResult",
    "StaleLock",
    "check",
    "default_lock_path",
    "find_spec",
    "init",
    "load_spec",
    "read_lock",
    "schema_text",
    "shipped_matrices",
    "write_lock",
]
