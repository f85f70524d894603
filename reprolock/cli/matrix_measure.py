"""``reprolock matrix measure``: measure the CUDA kernels of a wheel on an index."""

from __future__ import annotations

import click

from reprolock.api.measure import PYPI, Measurement, measure
from reprolock.cli import output
from reprolock.cli.lock import net_options
from reprolock.cli.options import platform_option
from reprolock.errors import InputError
from reprolock.model import Platform, PythonVersion


@click.command("measure")
@click.argument("pin", metavar="PACKAGE==VERSION")
@platform_option
@click.option(
    "--python",
    "python_text",
    default="3.11",
    show_default=True,
    help="The Python whose wheel to measure (its cpXY tag).",
)
@click.option(
    "--index",
    "index_url",
    default=PYPI,
    show_default=True,
    help="The simple index to read the wheel from.",
)
def measure_command(pin: str, platform: Platform, python_text: str, index_url: str) -> None:
    """Measure the CUDA kernels a wheel really carries: stream it once (sha256 checked),
    scan every shared object's fatbin for SASS architectures and PTX, and print the
    matrices row to add, citing the measured file."""
    settings = output.current()
    try:
        python = PythonVersion.parse(python_text)
    except ValueError as exc:
        raise InputError(f"--python: {exc}.", hint='Write it like "3.11".') from None
    result = measure(
        pin, platform=platform, python=python, net=net_options(settings), index=index_url
    )
    if settings.format == "json":
        settings.emit_json(_json(result, platform))
        return
    settings.say(f"{result.filename} ({result.size} bytes, sha256:{result.sha256})")
    if result.cuda:
        settings.say(f"  pins CUDA runtime {result.cuda}")
    if not result.libraries:
        settings.say("  no shared object carries CUDA kernels")
        return
    for name, kernels in result.libraries.items():
        settings.say(f"  {name}: {kernels.describe()} ({kernels.containers} fatbins)")
    chosen = result.primary
    assert chosen is not None
    settings.say("")
    settings.say(f"# the row, from {chosen[0]} (the library the row describes):")
    settings.say("[[arches]]")
    settings.say(f'platform = "{platform}"')
    settings.say("sass = [" + ", ".join(f'"{c}"' for c in chosen[1].sass) + "]")
    settings.say("ptx = [" + ", ".join(f'"{p.arch}"' for p in chosen[1].ptx) + "]")
    if chosen[1].ptx_isa is not None:  # the highest: what a driver must know to JIT it
        settings.say(f'ptx-isa = "{chosen[1].ptx_isa}"')
    settings.say(f'measured = "{result.citation}"')


def _json(result: Measurement, platform: Platform) -> dict[str, object]:
    chosen = result.primary
    return {
        "filename": result.filename,
        "url": result.url,
        "sha256": result.sha256,
        "size": result.size,
        "platform": str(platform),
        "cuda": result.cuda,
        "primary": chosen[0] if chosen else None,
        "libraries": {
            name: {
                "sass": [str(c) for c in k.sass],
                "ptx": [{"arch": str(p.arch), "isa": p.isa} for p in k.ptx],
                "fatbins": k.containers,
            }
            for name, k in result.libraries.items()
        },
    }
