"""Project files: find, read and check the spec and the lock; write starters."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from reprolock import resources
from reprolock.compat import Matrices, load_matrices
from reprolock.errors import CheckFailed, InputError, ReprolockError, SourceError, Unsatisfiable
from reprolock.lock import Decoded, Lockfile, dumps, inputs_of, loads, stale_reasons
from reprolock.lock.io import read_bytes, read_text, write_atomic
from reprolock.model import grammar
from reprolock.model.paths import UnsafePath, inside
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
    if pyproject.exists() and "[tool.reprolock" in read_text(pyproject, what="pyproject.toml"):
        return pyproject
    raise InputError(
        f"no {SPEC_NAME} in {cwd.resolve()} (and no [tool.reprolock] in pyproject.toml).",
        hint="Create one with `reprolock init`, or point to it with --spec PATH.",
    )


def default_lock_path(spec_path: Path) -> Path:
    return spec_path.parent / LOCK_NAME


def project_root(folder: Path) -> Path:
    """The folder that files named by a spec in ``folder`` must stay in: the nearest
    ancestor holding ``.git`` (the repository), else ``folder`` itself."""
    start = folder.resolve()
    for candidate in (start, *start.parents):
        if (candidate / ".git").exists():
            return candidate
    return start


def read_project_file(folder: Path, name: str, *, what: str, limit_name: str) -> bytes:
    """The bytes of ``name`` (relative to the spec's ``folder``), a regular file inside
    the project (`project_root`), within ``limits.<limit_name>``.

    Raises ValueError (refused: absolute, outside the project, not a regular file, too
    large) or OSError (cannot be read), for the spec parser to report at its key.
    """
    grammar.relative_file(name)
    root = project_root(folder)
    try:
        inside(root, folder / name)
    except UnsafePath:
        raise ValueError(
            f"{grammar.show(name)} is outside the project ({root}): files named by the spec "
            "must lie in its folder or its repository (the nearest folder holding .git)"
        ) from None
    try:
        return read_bytes((folder / name).resolve(), what=what, limit_name=limit_name)
    except SourceError as exc:
        if isinstance(exc.__cause__, OSError):
            raise exc.__cause__ from None
        raise OSError(exc.message.removesuffix(".")) from None
    except ReprolockError as exc:  # not a regular file, too large
        hint = f" {exc.hint.removesuffix('.')}" if exc.hint else ""
        raise ValueError(f"{exc.message.removesuffix('.')}.{hint}") from None


def load_spec(path: Path) -> Spec:
    """Read and validate the spec at ``path`` (reprolock.toml or pyproject.toml).

    Requirements files and keyrings it names must be regular files inside the spec's
    folder or its repository (`project_root`).
    """
    if not path.exists():
        raise InputError(
            f"{path}: no such file.",
            hint="Create a spec with `reprolock init`, or fix the --spec path.",
        )
    text = read_text(path, what="spec")
    folder = path.parent

    def read_file(name: str) -> str:
        data = read_project_file(
            folder, name, what="requirements file", limit_name="requirements_file_bytes"
        )
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(
                f"{grammar.show(name)} is not UTF-8 text (at byte offset {exc.start})"
            ) from None

    def check_file(name: str) -> None:
        read_project_file(folder, name, what="keyring", limit_name="document_bytes")

    return parse_spec(
        text,
        file=str(path),
        matrices=shipped_matrices(),
        read_file=read_file,
        check_file=check_file,
        pyproject=path.name == "pyproject.toml",
    )


def decode_lock(path: Path) -> Decoded:
    """The lock at ``path``, validated, with what its integrity digests say (not acted on:
    see `read_lock`)."""
    return loads(read_text(path, what="lock"), file=str(path))


def read_lock(path: Path) -> tuple[Lockfile, list[str]]:
    """The lock at ``path`` and any warnings about it.

    Fails closed: a lock whose integrity digests show a hand edit is refused (`EditedLock`,
    exit 1).  A lock of version 1.0, written before locks carried digests, is read with a
    warning.
    """
    return trusted_lock(decode_lock(path), str(path))


def use_lock(
    path: Path,
    spec_path: Path | None,
    *,
    cwd: Path,
    locked: bool,
    warnings: list[str] | None = None,
) -> tuple[Lockfile, list[str]]:
    """The lock at ``path`` for a command that uses it (dockerfile, fetch, verify), and the
    warnings about it: `read_lock`'s and `freshness`'s (a stale lock; with ``locked`` an
    error), also appended to ``warnings`` as soon as they are known."""
    if not path.exists():
        raise InputError(f"{path}: no such lock.", hint="Create it with `reprolock lock`.")
    lock, found = read_lock(path)
    found += freshness(spec_path, path, lock, cwd=cwd, locked=locked)
    if warnings is not None:
        warnings.extend(found)
    return lock, found


def read_lock_text(text: str, name: str) -> tuple[Lockfile, list[str]]:
    """`read_lock` of a lock's text from elsewhere (standard input, a git revision);
    ``name`` says where in messages."""
    return trusted_lock(loads(text, file=name), name)


def trusted_lock(decoded: Decoded, name: str) -> tuple[Lockfile, list[str]]:
    """The decoded lock, refused when its integrity digests show a hand edit."""
    warnings = list(decoded.warnings)
    found = decoded.integrity
    if found.edited:
        raise EditedLock(Path(name), found.edited)
    if found.unverifiable:
        warnings.append(
            f"{name}: cannot be checked for hand edits: {found.unverifiable}. "
            "Run `reprolock lock` to add integrity digests."
        )
    return decoded.lock, warnings


def lock_digest(path: Path) -> str:
    """``sha256:`` of the lock file's bytes (what the image's lock-digest label records)."""
    return "sha256:" + hashlib.sha256(read_bytes(path, what="lock")).hexdigest()


class EditedLock(CheckFailed):
    """The lock's content no longer matches its integrity digests."""

    def __init__(self, path: Path, sections: tuple[str, ...]) -> None:
        if len(sections) == 1:
            message = (
                f"{path}: {sections[0]} was edited by hand: it no longer matches the "
                "lock's integrity digest."
            )
        else:
            message = (
                f"{path}: was edited by hand: {', '.join(sections)} no longer match the "
                "lock's integrity digests."
            )
        super().__init__(
            message,
            hint="A lock is written by `reprolock lock` only: revert the edit, or run "
            "`reprolock lock` to resolve again and regenerate it.",
        )
        self.sections = sections


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
    decoded = decode_lock(lock_file)
    found = decoded.integrity
    if found.edited:
        raise EditedLock(lock_file, found.edited)
    if found.unverifiable:
        raise CheckFailed(
            f"{lock_file}: cannot be verified: {found.unverifiable}, so a hand edit would "
            "go unnoticed.",
            hint="Run `reprolock lock` to regenerate it with integrity digests, then commit it.",
        )
    lock = decoded.lock
    # Refused before staleness: relocking cannot help a base without a usable interpreter.
    from reprolock.api.interpreter_layer import check_locked  # noqa: PLC0415

    check_locked(spec, lock.targets, shipped_matrices())
    warnings = [*decoded.warnings, *stack]
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


def freshness(
    spec_path: Path | None, lock_file: Path, lock: Lockfile, *, cwd: Path, locked: bool
) -> list[str]:
    """What `check` says about ``lock`` being the lock of its spec, for the commands that
    use a lock (dockerfile, fetch, verify): a warning when it is stale, or with ``locked``
    a `StaleLock` (exit 1). The spec is ``spec_path``, else the one beside the lock; when
    there is none (or it does not load), a warning says freshness was not checked, and
    ``locked`` makes that an error too."""
    try:
        spec_file = find_spec(spec_path if spec_path is not None else lock_file.parent, cwd)
    except ReprolockError as exc:  # a lock on its own (a CI artifact): nothing to compare
        if locked:
            raise CheckFailed(
                f"{lock_file}: --locked needs the spec to check the lock against: {exc.message}",
                hint="Pass --spec PATH.",
            ) from None
        return []
    try:
        spec = load_spec(spec_file)
    except ReprolockError as exc:
        if locked:
            raise
        return [f"{lock_file}: not checked against {spec_file}: {exc.message.removesuffix('.')}."]
    reasons = stale_reasons(lock, inputs_of(spec, shipped_matrices().version))
    if not reasons:
        return []
    if locked:
        raise StaleLock(
            CheckResult(
                spec_path=spec_file,
                spec=spec,
                lock_path=lock_file,
                lock=lock,
                reasons=tuple(reasons),
            )
        )
    return [
        f"{lock_file} is stale: it no longer matches {spec_file} ({'; '.join(reasons)}); "
        "run `reprolock lock` (--locked makes this an error)."
    ]


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
