"""``reprolock lock``: resolve the spec for every target and write the lock atomically."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name

from reprolock import __version__
from reprolock.api.network import NetOptions

if TYPE_CHECKING:
    from reprolock.api.progress import Observer
    from reprolock.compat import Matrices
    from reprolock.compat.arches import ArchList
    from reprolock.model import ImageRef
    from reprolock.resolve.python.resolve import PythonResolution
    from reprolock.resolve.python.target import PythonTarget
    from reprolock.spec import Spec
    from reprolock.stack.base import BaseChoice as StackChoice
from reprolock.api.heap import fewer_collections
from reprolock.api.project import (
    EditedLock,
    default_lock_path,
    find_spec,
    load_spec,
    shipped_matrices,
)
from reprolock.errors import InputError, Unsatisfiable
from reprolock.lock import (
    BaseChoice,
    CudaStack,
    Decoded,
    LockedTarget,
    Lockfile,
    PythonPackage,
    dumps,
    inputs_of,
    loads,
    new_lockfile,
)
from reprolock.lock.freshness import locked_image
from reprolock.lock.io import read_text, write_atomic
from reprolock.model import CudaVersion, PythonVersion
from reprolock.resolve.python.target import DEFAULT_GLIBC
from reprolock.spec.model import UnknownCoverage


@dataclass(frozen=True, slots=True, kw_only=True)
class LockResult:
    spec_path: Path
    lock_path: Path
    lock: Lockfile
    changed: bool
    resolutions: tuple[PythonResolution, ...] = ()
    warnings: tuple[str, ...] = field(default=())
    up_to_date: bool = False  # the lock already matched the inputs; nothing was resolved
    base_changes: tuple[str, ...] = ()  # "<target>: base <ref> moved: <old> -> <new>"


def target_id_of(targets: Iterable[PythonTarget], platform: object) -> str:
    from reprolock.api.python_layer import target_id  # noqa: PLC0415

    return next(target_id(t) for t in targets if t.platform == platform)


def _previous_pins(
    path: Path, decoded: Decoded, warnings: list[str]
) -> tuple[dict[str, LockedTarget], bool]:
    """The targets of the existing lock whose pins may be kept, and whether the whole lock
    is trusted (its integrity digests verified).

    A target with a hand-edited section keeps nothing: it is resolved afresh, so an edit is
    never carried into the new lock.  A lock without digests (lock-version 1.0) keeps its
    Python versions (preferences the resolver checks against the index again) but not its
    base pins (taken as they are): bases are pinned again from the registry.
    """
    found = decoded.integrity
    targets = decoded.lock.targets
    if found.verified:
        return {t.id: t for t in targets}, True
    if found.edited:
        warnings.append(
            f"{EditedLock(path, found.edited).message} Resolving again; "
            "the edited targets keep no pins."
        )
        return {t.id: t for t in targets if t.id not in found.edited_targets}, False
    warnings.append(
        f"{path}: cannot be checked for hand edits ({found.unverifiable}); resolving again, "
        "with the base images pinned afresh."
    )
    return {t.id: replace(t, base=None) for t in targets}, False


def lock(
    spec_path: Path | None,
    lock_path: Path | None,
    *,
    cwd: Path,
    net: NetOptions,
    upgrade: bool = False,
    upgrade_packages: Iterable[str] = (),
    refresh_base: bool = False,
    observer: Observer | None = None,
    measure_kernels: bool = False,
    strict_latest: Iterable[str] = (),
    resolving: Callable[[Spec], None] | None = None,
) -> LockResult:
    """Resolve ``spec`` and write the lock; existing pins are kept where they still fit.

    ``resolving`` is called with the spec once the lock is known to need resolving (not
    when it is up to date), before the resolver and the HTTP stack are imported: the CLI
    starts the index page workers then, as many as the spec's size calls for.

    ``measure_kernels`` measures, from their wheels, the candidate framework builds whose
    GPU kernels the tables do not know, instead of refusing them.  A package locked below
    the newest version its requirements allow, for want of a usable file of the newer one,
    is a warning (and recorded in the lock); for the ``strict_latest`` packages, an error."""
    strict = frozenset(canonicalize_name(n) for n in strict_latest)
    spec_file = find_spec(spec_path, cwd)
    spec = load_spec(spec_file)
    lock_file = lock_path or default_lock_path(spec_file)
    previous: dict[str, LockedTarget] = {}
    old_text = None
    old: Lockfile | None = None
    inputs = inputs_of(spec, shipped_matrices().version)
    warnings: list[str] = []
    trusted = False
    if lock_file.exists():
        try:
            old_text = read_text(lock_file, what="lock")
            decoded = loads(old_text, file=str(lock_file))
        except InputError as exc:
            warnings.append(f"the existing lock is unreadable and will be replaced: {exc.message}")
        else:
            old = decoded.lock
            warnings.extend(decoded.warnings)
            previous, trusted = _previous_pins(lock_file, decoded, warnings)
    upgrades = frozenset(canonicalize_name(n) for n in upgrade_packages)
    if (
        old is not None
        and trusted
        and not (upgrade or upgrades or net.refresh or refresh_base)
        and old.inputs_hash == inputs.inputs_hash
        and old.created_by == f"reprolock {__version__}"
        and not measure_kernels
    ):
        # The lock was made from these very inputs by this reprolock, and its integrity
        # digests show no hand edit: resolving again would keep every pin.  --refresh
        # re-resolves (e.g. to see yanked files).
        _refuse_downgrades(old.targets, strict)
        warnings.extend(
            f"{t.id}: {d.name} {d.version} chosen; {d.newest} {d.reason}"
            for t in old.targets
            for d in t.downgrades
        )
        return LockResult(
            spec_path=spec_file,
            lock_path=lock_file,
            lock=old,
            changed=False,
            warnings=tuple(warnings),
            up_to_date=True,
        )
    if resolving is not None:
        resolving(spec)
    # Imported here: the fast path above needs neither the resolver nor the HTTP stack.
    from reprolock.api.base_layer import measure_beyond_os, pin_bases  # noqa: PLC0415
    from reprolock.api.interpreter_layer import provide  # noqa: PLC0415
    from reprolock.api.python_layer import (  # noqa: PLC0415
        locked_downgrades,
        locked_packages,
        resolve_targets,
        target_id,
        targets_of,
    )
    from reprolock.api.stack_layer import (  # noqa: PLC0415
        plan_targets,
        platform_key,
        with_chosen_base,
    )
    from reprolock.stack.check import decide_stack  # noqa: PLC0415
    from reprolock.stack.companions import companion_patches  # noqa: PLC0415

    matrices = shipped_matrices()
    spec, base_choice = with_chosen_base(spec, str(spec_file), matrices)
    if base_choice is not None:
        warnings.append(f"[base]: chose {base_choice.ref.familiar}: {base_choice.why}")
    by_platform = {t.platform: t for t in previous.values()}
    bases = pin_bases(spec, net, previous=by_platform, refresh=refresh_base)
    tids = {t.platform: target_id(t) for t in targets_of(spec)}
    provided = provide(spec, spec_file.parent, bases, net, tids, matrices, by_platform)
    pythons = {
        p: PythonVersion.parse_exact(v.interpreter.interpreter.version)
        for p, v in provided.items()
        if v.interpreter is not None
    }
    facts = {p: v.facts for p, v in provided.items() if v.facts is not None}
    python_targets = targets_of(spec, pythons, facts)
    for platform, found in provided.items():
        tid = tids[platform]
        if found.facts is not None and spec.python is not None and found.facts.libc_version is None:
            warnings.append(
                f"{tid}: the base's C library version is unknown ({found.facts.libc or 'no libc'}"
                " found); wheel tags assume glibc "
                f"{'.'.join(map(str, DEFAULT_GLIBC))}."
            )
        if found.interpreter is not None:
            chosen = found.interpreter.interpreter
            tried = "".join(f"; {r}" for r in found.interpreter.rejected)
            warnings.append(
                f"{tid}: Python {chosen.version} from {chosen.source.value} ({chosen.path}){tried}"
            )
        if found.apt is not None:
            warnings.extend(f"{tid}: apt: {n}" for n in found.apt.notes)
    apt_results = {p: v.apt for p, v in provided.items() if v.apt is not None}
    measured: dict[str, dict[tuple[str, str, str], ArchList]] = {}
    if measure_kernels:
        from reprolock.api.kernels import measure_unknown  # noqa: PLC0415

        measured = {
            target_id(t): measure_unknown(
                spec, target_id(t), t, bases.get(t.platform), matrices, net
            )
            for t in python_targets
        }
        for tid, kernels in measured.items():
            warnings.extend(
                f"{tid}: measured {arches.measured}: {arches.describe()}"
                for arches in dict.fromkeys(kernels.values())
            )
    plans = plan_targets(
        spec, [(target_id(t), t) for t in python_targets], bases, matrices, measured=measured
    )
    for tid, stack_plan in plans.items():
        warnings.extend(f"{tid}: {note}" for note in stack_plan.notes)
    resolved = resolve_targets(
        spec,
        net,
        python_targets,
        previous=previous,
        keep_pins=not upgrade,
        upgrade_packages=upgrades,
        observer=observer,
        plans=plans,
        patches=companion_patches(lambda: matrices.torch),
    )
    targets = []
    resolutions = []
    for tid, target, resolution in resolved:
        packages = locked_packages(resolution) if resolution is not None else ()
        downgrades = locked_downgrades(resolution) if resolution is not None else ()
        if resolution is not None:
            resolutions.append(resolution)
            warnings.extend(f"{tid}: {w}" for w in resolution.warnings)
            warnings.extend(f"{tid}: {d.line()}" for d in resolution.downgrades)
        base = bases.get(target.platform)
        cuda = None
        if spec.gpu is not None:
            cuda = decide_stack(
                tid,
                packages,
                dict(base.env) if base else {},
                spec.gpu,
                matrices,
                platform=platform_key(target.platform),
                plan=plans.get(tid),
            )
            if cuda is None:
                warnings.append(
                    f"{tid}: [gpu] is set, but no CUDA runtime ended up in the "
                    "target (no CUDA base image, no nvidia-cuda-runtime wheel)"
                )
            else:
                cuda = _with_extensions(
                    cuda,
                    tid,
                    spec,
                    packages,
                    target,
                    previous.get(tid),
                    matrices,
                    net,
                    warnings,
                    measure=measure_kernels,
                )
        here = provided.get(target.platform)
        interpreter = here.interpreter if here is not None else None
        if base is not None:
            kept = by_platform.get(target.platform)
            base = replace(
                base,
                facts=(here.facts if here is not None else None) or base.facts,
                choice=None
                if base_choice is None
                else _choice_record(
                    spec,
                    base_choice,
                    packages,
                    kept.base.choice if kept is not None and kept.base is not None else None,
                    partial(measure_beyond_os, spec, net, platform=target.platform),
                ),
            )
        targets.append(
            LockedTarget(
                id=tid,
                platform=target.platform,
                python=str(target.python),
                interpreter=None if interpreter is None else interpreter.interpreter,
                cuda=cuda,
                base=base,
                apt_snapshot=spec.apt.snapshot
                if spec.apt is not None and target.platform in apt_results
                else None,
                apt=apt_results[target.platform].packages if target.platform in apt_results else (),
                packages=packages,
                downgrades=downgrades,
            )
        )
    _refuse_downgrades(targets, strict)
    base_changes = tuple(
        f"{t.id}: base {t.base.ref} moved: {old_base.manifest_digest} -> {t.base.manifest_digest}"
        for t in targets
        if t.base is not None
        and (old_target := previous.get(t.id)) is not None
        and (old_base := old_target.base) is not None
        and old_base.ref == t.base.ref
        and old_base.manifest_digest != t.base.manifest_digest
    )
    lockfile = new_lockfile(inputs, tuple(targets), locked_image(spec))
    with fewer_collections():  # the heap is large now: a full collection costs ~50 ms
        text = dumps(lockfile)
    changed = text != old_text
    if changed:
        write_atomic(lock_file, text.encode("utf-8"))  # the text just compared, not again
    return LockResult(
        spec_path=spec_file,
        lock_path=lock_file,
        lock=lockfile,
        changed=changed,
        resolutions=tuple(resolutions),
        warnings=tuple(warnings),
        base_changes=base_changes,
    )


def _refuse_downgrades(targets: Iterable[LockedTarget], strict: frozenset[str]) -> None:
    """`Unsatisfiable` when a ``--strict-latest`` package is locked below the newest version
    its requirements allow (the lock is not written); `InputError` when a name is locked in
    no target (a misspelled name would otherwise promise a check it never makes)."""
    targets = tuple(targets)
    locked = {canonicalize_name(p.name) for t in targets for p in t.packages}
    unknown = sorted(strict - locked)
    if unknown:
        raise InputError(
            f"--strict-latest: {', '.join(unknown)} "
            + ("is" if len(unknown) == 1 else "are")
            + " not a locked Python package of any target.",
            hint="Name a package the lock holds (see `reprolock explain NAME`), or drop the "
            "option for it.",
        )
    found = [
        f"{t.id}: {d.name} {d.version} chosen; {d.newest} {d.reason}"
        for t in targets
        for d in t.downgrades
        if canonicalize_name(d.name) in strict
    ]
    if not found:
        return
    raise Unsatisfiable(
        "--strict-latest: not locked at the newest version its requirements allow: "
        + "; ".join(found)
        + ".",
        hint="Publish a wheel of what the newer version needs on a [[python.index]], allow "
        "building its sdist ([python] sdists, no-build), or drop --strict-latest for it to "
        "accept the older version.",
    )


def _with_extensions(
    cuda: CudaStack,
    tid: str,
    spec: Spec,
    packages: tuple[PythonPackage, ...],
    target: PythonTarget,
    old: LockedTarget | None,
    matrices: Matrices,
    net: NetOptions,
    warnings: list[str],
    *,
    measure: bool,
) -> CudaStack:
    """The target's CUDA extensions: measured from their wheels with ``--measure-kernels``;
    otherwise those the previous lock measured from the very same files, judged again
    against the fleet. One that cannot run a GPU of the fleet is refused (exit 3) unless
    ``[gpu] unknown-coverage = "warn"``."""
    from reprolock.api.kernels import (  # noqa: PLC0415
        MeasuredExtensions,
        carried_extensions,
        measure_extensions,
    )

    gpu = spec.gpu
    if gpu is None or not gpu.devices:
        return cuda
    if measure:
        try:
            toolkit = CudaVersion.parse(cuda.toolkit)
        except ValueError:
            toolkit = None
        found = measure_extensions(packages, target, toolkit, gpu, matrices, net)
        warnings.extend(
            f"{tid}: measured {e.measured}: {' '.join(e.arches) or 'no native kernels'}"
            + (f", PTX {' '.join(e.ptx)}" if e.ptx else "")
            for e in found.extensions
        )
    elif old is not None and old.cuda is not None:
        found = carried_extensions(old.cuda.extensions, packages, gpu, matrices)
    else:
        found = MeasuredExtensions(extensions=(), problems=())
    if found.problems:
        if gpu.unknown_coverage is UnknownCoverage.WARN:
            warnings.extend(
                f'{tid}: {p} (accepted: [gpu] unknown-coverage = "warn")' for p in found.problems
            )
        else:
            raise Unsatisfiable(
                f"{tid}: a locked CUDA extension cannot run on every GPU of the fleet: "
                + "; ".join(found.problems)
                + ".",
                hint="Pin a release of it built for these GPUs, drop those GPUs from [gpu] "
                'devices, or set [gpu] unknown-coverage = "warn" to lock it knowingly.',
            )
    return replace(cuda, extensions=found.extensions)


def _is_cuda_wheel(name: str) -> bool:
    normalized = canonicalize_name(name)
    return normalized.startswith(("nvidia-", "cuda-")) or normalized == "cuda-toolkit"


def _choice_record(
    spec: Spec,
    choice: StackChoice,
    packages: tuple[PythonPackage, ...],
    old: BaseChoice | None,
    measure: Callable[[ImageRef], int | None],
) -> BaseChoice:
    """How the base was chosen, with the sizes ``explain`` compares: the CUDA copy the
    other choice would have added (its layers beyond its OS layer, kept from the previous
    lock while it names the same image) and the CUDA the wheels bring."""
    assert spec.base.image is not None
    instead = choice.instead_of.familiar if choice.instead_of is not None else None
    instead_bytes = None
    if choice.instead_of is not None:
        if old is not None and old.instead_of == instead and old.instead_of_bytes is not None:
            instead_bytes = old.instead_of_bytes
        else:
            instead_bytes = measure(choice.instead_of)
    cuda_bytes = sum(w.size or 0 for p in packages if _is_cuda_wheel(p.name) for w in p.wheels)
    return BaseChoice(
        image=spec.base.image,
        why=choice.why,
        instead_of=instead,
        instead_of_bytes=instead_bytes,
        cuda_wheel_bytes=cuda_bytes or None,
    )
