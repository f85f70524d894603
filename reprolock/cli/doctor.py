"""``reprolock doctor``: can this host run the locked target?"""

from __future__ import annotations

from pathlib import Path

import click

from reprolock.api.doctor import doctor
from reprolock.cli import output
from reprolock.cli.options import lock_option, spec_option, target_option
from reprolock.errors import CheckFailed


@click.command("doctor")
@spec_option
@lock_option
@target_option
@click.option(
    "--nvidia-smi",
    "nvidia_smi",
    metavar="PATH",
    help="The nvidia-smi to ask [default: the one on PATH].",
)
@click.option("--no-nvml", is_flag=True, help="Do not use NVML (nvidia-ml-py) even when installed.")
def doctor_command(
    spec_path: Path | None,
    lock_path: Path | None,
    target_id: str | None,
    nvidia_smi: str | None,
    no_nvml: bool,
) -> None:
    """Check that this GPU host can run the locked target: the driver against the lock's
    floor (strict, and under CUDA minor-version compatibility), every GPU's compute
    capability against the build's kernels (native or PTX), and the NVIDIA container
    toolkit. GPUs and driver come from NVML when nvidia-ml-py is installed, else from
    `nvidia-smi --query-gpu=name,compute_cap,driver_version --format=csv`.
    Exit 0 when it can, 1 when it cannot."""
    settings = output.current()
    report = doctor(
        spec_path,
        lock_path,
        cwd=Path(),
        target_id=target_id,
        nvidia_smi=nvidia_smi,
        use_nvml=not no_nvml,
    )
    facts = report.facts
    if settings.format == "json":
        settings.emit_json(
            {
                "target": report.target.id,
                "ok": report.ok,
                "source": facts.source,
                "error": facts.error,
                "driver": None if facts.driver is None else str(facts.driver),
                "gpus": [
                    {
                        "index": g.index,
                        "name": g.name,
                        "compute-capability": None if g.capability is None else str(g.capability),
                    }
                    for g in facts.gpus
                ],
                "toolkit": facts.toolkit,
                "checks": [
                    {"check": c.name, "ok": c.ok, "message": c.message} for c in report.checks
                ],
            }
        )
    else:
        settings.say(f"{report.target.id} on this host ({facts.source}):")
        for check in report.checks:
            mark = {True: "ok  ", False: "FAIL", None: "??  "}[check.ok]
            settings.say(f"  {mark} {check.name}: {check.message}")
    if not report.ok:
        if settings.format == "json":
            raise SystemExit(CheckFailed.exit_code)  # the report says why
        raise CheckFailed(
            f"this host cannot run {report.target.id}.",
            hint="Fix the failing checks above (driver, GPUs, container toolkit), or lock for "
            "this host's GPUs and driver.",
        )
