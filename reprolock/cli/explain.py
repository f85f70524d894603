"""``reprolock explain [TARGET | NAME]``: the stack solver's decision path for a target, or
the decision record for one Python package."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import click

from reprolock.api.explain import (
    PackageExplanation,
    StackExplanation,
    explain_apt,
    explain_package,
    explain_stack,
    is_target,
)
from reprolock.cli import output
from reprolock.cli.lock import net_options
from reprolock.cli.options import spec_option, target_option
from reprolock.lock import BuildWhere, LockedTarget
from reprolock.resolve.python.newer import Verdict
from reprolock.stack.plan import group_verdicts


@click.command("explain")
@click.argument("what", nargs=-1)
@spec_option
@target_option
def explain_command(what: tuple[str, ...], spec_path: Path | None, target_id: str | None) -> None:
    """Why the environment is locked as it is: `explain [TARGET]`, `explain NAME` or
    `explain apt NAME`.

    With no argument or a TARGET id (e.g. py3.11-amd64): the CUDA stack decision path —
    every framework build considered (PyPI wheel, PyTorch index variants, CPU builds,
    TensorFlow [and-cuda], JAX plugins), why each was rejected, which one was chosen, how
    it covers each target GPU, and the bounds handed to the resolver; then the locked base
    (why [base] image = "auto" chose it and the CUDA copy that saves, what it holds) and
    the interpreter. Offline.

    With a package NAME: where it was looked up, who requires it, which version was chosen,
    for every newer version the first rule that excluded it (a specifier and whose, the
    CUDA stack's companion bound, exclude-newer, a yank, the pre-release policy,
    Requires-Python, no wheel for the target, only an sdist, a dependency without a usable
    file, a conflict), the installable versions, and why every other version was rejected.

    With apt NAME: why the apt package is in the closure — the chain of dependencies from a
    requested package, or that the base image already has it.
    """
    settings = output.current()
    cwd = Path()
    if len(what) > 2 or (len(what) == 2 and what[0] != "apt"):
        raise click.UsageError("give a TARGET, a package NAME, or apt NAME.")
    if len(what) == 2:
        _explain_apt(settings, what[1], spec_path, target_id)
        return
    name = what[0] if what else None
    if name is None or is_target(name, spec_path=spec_path, cwd=cwd):
        stacks = explain_stack(name or target_id, spec_path=spec_path, cwd=cwd)
        if settings.format == "json":
            settings.emit_json([_stack_json(s) for s in stacks])
        else:
            for stack in stacks:
                _say_stack(settings, stack)
        return
    results = explain_package(
        name, spec_path=spec_path, target=target_id, cwd=cwd, net=net_options(settings)
    )
    if settings.format == "json":
        settings.emit_json([_package_json(r) for r in results])
        return
    for r in results:
        _say_package(settings, r)


def _stack_json(s: StackExplanation) -> dict[str, object]:
    out: dict[str, object] = {"target": s.target_id}
    if s.failure is not None:
        out["unsatisfiable"] = s.failure.render()
    if s.plan is not None:
        out["frameworks"] = [
            {
                "requirement": f"{c.request.name}{c.request.specifier}",
                "chosen": c.verdict.build.label,
                "index": c.verdict.build.index,
                "coverage": dict(c.verdict.coverage),
                "allowed-versions": [str(v) for v in c.allowed],
            }
            for c in s.plan.choices
        ]
        out["considered"] = [
            {"build": v.build.label, "rejected": list(v.reasons), "notes": list(v.notes)}
            for v in s.plan.considered
        ]
        out["routes"] = {r.name: r.url for r in s.plan.routes}
        out["constraints"] = {
            n: {"specifier": str(c), "why": s.plan.reasons.get(n, "")}
            for n, c in sorted(s.plan.constraints.items())
        }
        out["notes"] = list(s.plan.notes)
    if s.locked is not None:
        out |= _base_json(s.locked)
    if s.locked is not None and s.locked.cuda is not None:
        c = s.locked.cuda
        out["locked"] = {
            "toolkit": c.toolkit,
            "driver-min": c.driver_min,
            "driver-min-compat": c.driver_min_compat,
            "frameworks": list(c.frameworks),
            "coverage": dict(c.coverage),
            "conflicts": list(c.conflicts),
        }
    return out


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def _base_json(locked: LockedTarget) -> dict[str, object]:
    out: dict[str, object] = {}
    base = locked.base
    if base is not None:
        found: dict[str, object] = {"ref": base.ref, "compressed-bytes": base.size}
        if base.choice is not None:
            c = base.choice
            found["chosen"] = {
                "image": c.image,
                "why": c.why,
                "instead-of": c.instead_of,
                "instead-of-bytes": c.instead_of_bytes,
                "cuda-wheel-bytes": c.cuda_wheel_bytes,
            }
        if base.facts is not None:
            f = base.facts
            found["facts"] = {
                "os": f.os_id,
                "os-version": f.os_version,
                "libc": f.libc,
                "libc-version": f.libc_version,
                "cuda": f.cuda,
                "pythons": [
                    {"path": p.path, "version": p.version, "usable": p.usable} for p in f.pythons
                ],
            }
        out["base"] = found
    if locked.interpreter is not None:
        i = locked.interpreter
        out["interpreter"] = {"source": i.source.value, "path": i.path, "version": i.version}
    return out


def _say_base(say: Callable[[str], None], locked: LockedTarget) -> None:
    """The locked base: how it was chosen (and the CUDA copy that saved), what it holds,
    and the interpreter."""
    base = locked.base
    if base is None:
        return
    size = f" ({_mb(base.size)} compressed)" if base.size is not None else ""
    say(f"  base: {base.ref}{size}")
    choice = base.choice
    if choice is not None:
        say(f'    chosen for [base] image = "{choice.image}": {choice.why}')
        if choice.instead_of is not None:
            if choice.instead_of_bytes is not None:
                say(
                    f"    instead of {choice.instead_of}: saves {_mb(choice.instead_of_bytes)}, "
                    "the CUDA copy its layers above the OS would add"
                )
            else:
                say(f"    instead of {choice.instead_of} (its size could not be read)")
        if choice.cuda_wheel_bytes is not None:
            say(f"    CUDA from wheels (nvidia-*): {_mb(choice.cuda_wheel_bytes)}, one copy")
    facts = base.facts
    if facts is not None:
        os_name = " ".join(p for p in (facts.os_id, facts.os_version) if p) or "unknown OS"
        libc = " ".join(p for p in (facts.libc, facts.libc_version) if p) or "no C library found"
        cuda = f"CUDA {facts.cuda}" if facts.cuda else "no CUDA"
        pythons = ", ".join(
            f"{p.version} {p.path}{'' if p.usable else ' (no venv/ensurepip)'}"
            for p in facts.pythons
        )
        say(f"    holds: {os_name}, {libc}, {cuda}; Python: {pythons or 'none'}")
    if locked.interpreter is not None:
        i = locked.interpreter
        say(f"  interpreter: Python {i.version} from {i.source.value} ({i.path})")


def _say_stack(settings: output.Settings, s: StackExplanation) -> None:
    say = settings.say
    if s.plan is not None:
        fleet = s.plan.fleet
        gpu = fleet.gpu
        what = f"{fleet.platform}, Python {fleet.python}"
        if gpu is None:
            what += ", CPU only (no [gpu])"
        else:
            devices = ", ".join(f"{d.requested} {d.capability.sm}" for d in gpu.devices)
            what += f", GPUs: {devices or 'any'}"
            if gpu.driver is not None:
                what += f", oldest driver {gpu.driver}"
            what += f", {gpu.compat.value} compat"
        if fleet.base_cuda is not None:
            what += f", base CUDA {fleet.base_cuda}"
        say(f"{s.target_id} ({what})")
    else:
        say(s.target_id)
    if s.failure is not None:
        say("  unsatisfiable:")
        say("    " + s.failure.render().replace("\n", "\n    "))
        return
    assert s.plan is not None
    plan = s.plan
    if not plan.choices and not plan.notes:
        say("  no framework (torch, tensorflow, jax) in the requirements: nothing to decide")
    limit = None if settings.verbosity > 0 else 8
    for choice in plan.choices:
        build = choice.verdict.build
        req = choice.request
        extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
        say(f"  {req.name}{extras}{req.specifier}:")
        route = next(
            (r.url for r in plan.routes if build.index and r.name.endswith(build.index)), None
        )
        say(f"    chose {build.label}" + (f", routed to {route}" if route else ""))
        for device, how in choice.verdict.coverage:
            say(f"      {device}: {how}")
        rejected = [v for v in plan.considered if v.build.framework == req.name and not v.ok]
        if rejected:
            lines = group_verdicts(rejected)
            say(f"    rejected ({len(rejected)} builds):")
            for line in lines[:limit]:
                say(f"      {line}")
            if limit and len(lines) > limit:
                say(f"      … {len(lines) - limit} more (-v shows all)")
    if plan.constraints:
        say("  handed to the resolver:")
        for n, spec in sorted(plan.constraints.items()):
            text = plan.shown.get(n) or f"{n}{spec}"
            say(f"    {text}: {plan.reasons.get(n, '')}")
    for note in plan.notes:
        say(f"  note: {note}")
    if s.locked is not None:
        _say_base(say, s.locked)
    if s.locked is not None and s.locked.cuda is not None:
        c = s.locked.cuda
        say(
            f"  locked: CUDA {c.toolkit}, driver >= {c.driver_min} "
            f"(>= {c.driver_min_compat} with minor-version compatibility)"
        )
        for device, how in c.coverage:
            say(f"    {device}: {how}")
        for conflict in c.conflicts:
            say(f"    conflict: {conflict}")


def _package_json(r: PackageExplanation) -> dict[str, object]:
    return {
        "name": r.name,
        "target": r.target_id,
        "looked-up-in": r.lookup,
        "chosen": None
        if r.pin is None
        else {
            "version": str(r.pin.version),
            "file": r.pin.release.wheel.filename,
            "sha256": r.pin.release.wheel.sha256,
            "required-by": list(r.pin.required_by),
            "built": None
            if r.build is None
            else {
                "where": r.build.where.value,
                "why": r.build.why,
                "backend": r.build.backend,
                "requires": list(r.build.requires),
                "wheels": [w.filename for w in r.build.wheels],
            },
        },
        "newer": [
            {"version": str(v.version), "rule": v.rule.value, "why": v.text} for v in r.newer
        ],
        "installable": [str(v) for v in r.installable],
        "rejected": {
            str(v.version): [v.text]
            + [t for t in r.selection.rejected.get(v.version, []) if t != v.text]
            for v in r.rejected
        },
        "unsatisfiable": r.failure,
        "not-applying": list(r.not_applying),
    }


def _say_package(settings: output.Settings, r: PackageExplanation) -> None:
    limit = None if settings.verbosity > 0 else 15
    settings.say(f"{r.name} for {r.target_id} ({r.target})")
    settings.say(f"  looked up in: {r.lookup}")
    if r.pin is not None:
        wheel = r.pin.release.wheel
        settings.say(f"  chosen: {r.pin.version}  {wheel.filename}")
        if r.build is not None:
            where = (
                "by `reprolock fetch`"
                if r.build.where is BuildWhere.FETCH
                else "in the Dockerfile's build stage, for the target"
            )
            settings.say(f"  built from its sdist {where}: {r.build.why}")
            wheels = ", ".join(sorted(w.filename for w in r.build.wheels))
            settings.say(f"  build backend: {r.build.backend} with {wheels}")
        settings.say(f"  required by: {', '.join(r.pin.required_by) or 'nothing'}")
    elif r.failure:
        settings.say("  not locked: the requirements cannot all be satisfied:")
        settings.say("    " + r.failure.replace("\n", "\n    "))
    elif r.not_applying:
        settings.say(
            "  not locked: the spec's requirement does not apply on this target (its marker is "
            f"false): {'; '.join(r.not_applying)}"
        )
    else:
        settings.say("  not locked: nothing in the spec requires it for this target")
    if r.newer:
        settings.say(f"  newer versions ({len(r.newer)}), the first rule that excluded each:")
        _say_verdicts(settings, r.newer, limit)
    versions = [str(v) for v in r.installable]
    shown = ", ".join(versions[:limit]) + (" …" if limit and len(versions) > limit else "")
    settings.say(f"  installable versions ({len(versions)}): {shown or 'none'}")
    if r.rejected:
        settings.say(f"  rejected versions ({len(r.rejected)}):")
        _say_verdicts(settings, r.rejected, limit)


def _say_verdicts(
    settings: output.Settings, verdicts: Sequence[Verdict], limit: int | None
) -> None:
    """One line per run of consecutive versions with the same reason (``2.0rc2 .. 2.0a1 (5
    versions): a pre-release, …``), ``limit`` lines at most."""
    runs: list[list[Verdict]] = []
    for verdict in verdicts:
        if runs and runs[-1][-1].text == verdict.text:
            runs[-1].append(verdict)
        else:
            runs.append([verdict])
    for run in runs[:limit]:
        first, last = run[0].version, run[-1].version
        versions = f"{first}" if len(run) == 1 else f"{first} .. {last} ({len(run)} versions)"
        settings.say(f"    {versions}: {run[0].text}")
    if limit and len(runs) > limit:
        hidden = sum(len(run) for run in runs[limit:])
        settings.say(f"    … {hidden} more versions (-v shows all)")


def _explain_apt(
    settings: output.Settings, name: str, spec_path: Path | None, target_id: str | None
) -> None:
    results = explain_apt(
        name, spec_path=spec_path, target=target_id, cwd=Path(), net=net_options(settings)
    )
    if settings.format == "json":
        settings.emit_json(
            [
                {
                    "name": r.name,
                    "target": r.target_id,
                    "version": r.version,
                    "upgrades": r.upgrades,
                    "installed": r.installed,
                    "why": list(r.why),
                }
                for r in results
            ]
        )
        return
    for r in results:
        if r.version is None:
            where = f"the base image has {r.installed}" if r.installed else "nothing requires it"
            settings.say(f"{r.name} for {r.target_id}: not in the closure ({where})")
            continue
        upgrade = f" (upgrades {r.upgrades})" if r.upgrades else ""
        settings.say(f"{r.name} {r.version} for {r.target_id}{upgrade}:")
        for depth, step in enumerate(r.why):
            settings.say(f"  {'  ' * depth}{step}")
