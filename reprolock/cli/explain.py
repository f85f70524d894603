"""``reprolock explain NAME``: the decision record for one Python package."""

from __future__ import annotations

from pathlib import Path

import click

from reprolock.api.explain import explain_package
from reprolock.cli import output
from reprolock.cli.lock import net_options
from reprolock.cli.options import spec_option, target_option


@click.command("explain")
@click.argument("name")
@spec_option
@target_option
def explain_command(name: str, spec_path: Path | None, target_id: str | None) -> None:
    """Why the Python package NAME is locked as it is: where it was looked up, who
    requires it, which version was chosen, and why every other version was rejected."""
    settings = output.current()
    results = explain_package(
        name, spec_path=spec_path, target=target_id, cwd=Path(), net=net_options(settings)
    )
    if settings.format == "json":
        settings.emit_json(
            [
                {
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
                    },
                    "installable": [str(x.version) for x in r.selection.releases],
                    "rejected": {
                        str(v): reasons
                        for v, reasons in sorted(r.selection.rejected.items(), reverse=True)
                    },
                    "unsatisfiable": r.failure,
                }
                for r in results
            ]
        )
        return
    limit = None if settings.verbosity > 0 else 15
    for r in results:
        settings.say(f"{r.name} for {r.target_id} ({r.target})")
        settings.say(f"  looked up in: {r.lookup}")
        if r.pin is not None:
            wheel = r.pin.release.wheel
            settings.say(f"  chosen: {r.pin.version}  {wheel.filename}")
            settings.say(f"  required by: {', '.join(r.pin.required_by) or 'nothing'}")
        elif r.failure:
            settings.say("  not locked: the requirements cannot all be satisfied:")
            settings.say("    " + r.failure.replace("\n", "\n    "))
        else:
            settings.say("  not locked: nothing in the spec requires it for this target")
        versions = [str(x.version) for x in r.selection.releases]
        shown = ", ".join(versions[:limit]) + (" …" if limit and len(versions) > limit else "")
        settings.say(f"  installable versions ({len(versions)}): {shown or 'none'}")
        rejected = sorted(r.selection.rejected.items(), reverse=True)
        if rejected:
            settings.say(f"  rejected versions ({len(rejected)}):")
            for version, reasons in rejected[:limit]:
                settings.say(f"    {version}: {'; '.join(reasons)}")
            if limit and len(rejected) > limit:
                settings.say(f"    … {len(rejected) - limit} more (-v shows all)")
