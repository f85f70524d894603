"""Project files: find, read and check the spec and the lock; write starters."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

from reprolock import resources
from reprolock.compat import Matrices, load_matrices
from reprolock.errors import CheckFailed, InputError, SourceError, Unsatisfiable
from reprolock.lock import Lockfile, dumps, inputs_of, loads, stale_reasons
from reprolock.lock.io import read_text, write_atomic
from reprolock.spec import Spec, parse_spec

SPEC_NAME = "reprolock.toml"
LOCK_NAME = "reprolock.lock"


@functools.cache
def shipped_matrices() -> Matrices:
    """The compatibility tables shipped with reprolock."""
    return load_matrices(lambda name: resources.read_text("matrices", name))


def find_spec(spec: Path | None, cwd: Path) -> Path:
    """The spec to use: the given path, else ``reprolock.toml``, else ``pyproject.toml``
    with a ``[tool.reprolock]`` table, in ``cwd``."""
    if spec is not None:
        if spec.is_dir():
            return find_spec(None, spec)
        return spec
    candidate = cwd / SPEC_NAME
    if candidate.exists():
        return candidate
    pyproject = cwd / "pyproject.toml"
    if pyproject.exists() and "[tool.reprolock" in read_text(pyproject):
        return pyproject
    raise InputError(
        f"no {SPEC_NAME} in {cwd.resolve()} (and no [tool.reprolock] in pyproject.toml).",
        hint="Create one with `reprolock init`, or point to it with --spec PATH.",
    )


def default_lock_path(spec_path: Path) -> Path:
    return spec_path.parent / LOCK_NAME


def load_spec(path: Path) -> Spec:
    """Read and validate the spec at ``path`` (reprolock.toml or pyproject.toml)."""
    if not path.exists():
        raise InputError(
            f"{path}: no such file.",
            hint="Create a spec with `reprolock init`, or fix the --spec path.",
        )
    text = read_text(path)
    folder = path.parent

    def read_file(name: str) -> str:
        return (folder / name).read_text(encoding="utf-8")

    return parse_spec(
        text,
        file=str(path),
        matrices=shipped_matrices(),
        read_file=read_file,
        pyproject=path.name == "pyproject.toml",
    )


def read_lock(path: Path) -> tuple[Lockfile, list[str]]:
    """The lock at ``path`` and any warnings about it."""
    decoded = loads(read_text(path), file=str(path))
    return decoded.lock, decoded.warnings


def write_lock(path: Path, lock: Lockfile) -> None:
    """Write ``lock`` atomically; the previous lock survives any failure."""
    write_atomic(path, dumps(lock).encode("utf-8"))


# -- init ---------------------------------------------------------------------------------
def init(path: Path, *, gpu: bool, force: bool) -> Path:
    """Write a commented starter spec to ``path`` (a file or a folder)."""
    target = path / SPEC_NAME if path.is_dir() else path
    if target.exists() and not force:
        raise InputError(
            f"{target}: already exists; not overwritten.",
            hint="Edit it, or pass --force to replace it with a starter spec.",
        )
    if not target.parent.is_dir():
        raise SourceError(f"{target.parent}: no such folder.", hint="Create the folder first.")
    text = resources.starter("gpu.toml" if gpu else "cpu.toml")
    write_atomic(target, text.encode("utf-8"))
    return target


# -- check ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    spec_path: Path
    spec: Spec
    lock_path: Path
    lock: Lockfile | None
    reasons: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    @property
    def fresh(self) -> bool | None:
        """True/False for an existing lock; None when there is none."""
        return None if self.lock is None else not self.reasons


def check(
    spec_path: Path | None, lock_path: Path | None, *, cwd: Path, locked: bool = False
) -> CheckResult:
    """Validate the spec and, when a lock exists, whether it is fresh.

    Raises `CheckFailed` for a stale lock (and for a missing one with ``locked``).
    """
    spec_file = find_spec(spec_path, cwd)
    spec = load_spec(spec_file)
    lock_file = lock_path or default_lock_path(spec_file)
    stack = stack_warnings(spec)
    if not lock_file.exists():
        if locked:
            raise CheckFailed(
                f"{lock_file}: no lock file, but --locked requires one.",
                hint="Create it with `reprolock lock` and commit it.",
            )
        return CheckResult(
            spec_path=spec_file, spec=spec, lock_path=lock_file, lock=None, warnings=stack
        )
    lock, warnings = read_lock(lock_file)
    warnings = [*warnings, *stack]
    reasons = stale_reasons(lock, inputs_of(spec, shipped_matrices().version))
    result = CheckResult(
        spec_path=spec_file,
        spec=spec,
        lock_path=lock_file,
        lock=lock,
        reasons=tuple(reasons),
        warnings=tuple(warnings),
    )
    if reasons:
        raise StaleLock(result)
    return result


def stack_warnings(spec: Spec) -> tuple[str, ...]:
    """The stack solver's verdict per target, offline (no base image known): one warning
    per target whose frameworks cannot run on the fleet."""
    from reprolock.api.python_layer import target_id, targets_of  # noqa: PLC0415
    from reprolock.api.stack_layer import plan_target  # noqa: PLC0415

    out = []
    # Offline the base image's CUDA is unknown: a base that may bring it is given the benefit.
    choosable = spec.base.ref is not None or spec.base.image is not None
    for target in targets_of(spec):
        tid = target_id(target)
        try:
            plan_target(spec, tid, target, None, shipped_matrices(), base_choosable=choosable)
        except Unsatisfiable as exc:
            out.append(f"stack: {exc.message}")
    return tuple(out)


class StaleLock(CheckFailed):
    """The lock does not match the spec; carries the check result."""

    def __init__(self, result: CheckResult) -> None:
        reasons = "\n".join(f"  - {r}" for r in result.reasons)
        super().__init__(
            f"{result.lock_path}: is stale; it no longer matches {result.spec_path}:\n{reasons}",
            hint="Run `reprolock lock` to update it, then commit both files.",
        )
        self.result = result


def schema_text(name: str) -> str:
    """A JSON Schema shipped with reprolock (``spec`` or ``lock``)."""
    files = {"spec": "reprolock.schema.json", "lock": "reprolock.lock.schema.json"}
    return resources.read_text("schemas", files[name])
