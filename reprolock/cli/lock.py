"""``reprolock lock``: resolve the spec for its targets and write reprolock.lock."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import click

from reprolock.api.locking import lock
from reprolock.api.network import NetOptions
from reprolock.cli import output
from reprolock.cli.options import lock_option, spec_option
from reprolock.cli.progress import ProgressLine
from reprolock.lock import LockedTarget
from reprolock.lock.io import read_text
from reprolock.net.config import NetConfig
from reprolock.spec import Spec


def net_options(settings: output.Settings, *, refresh: bool = False) -> NetOptions:
    """Network settings from the global options and the environment (CA bundle, proxies)."""
    config = NetConfig.from_environment(dict(os.environ), offline=settings.offline)
    cache = settings.cache_dir
    if cache is None:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        cache = Path(base) / "reprolock"
    return NetOptions(
        config=config,
        cache_dir=cache,
        refresh=refresh,
        credentials=index_credentials(os.environ),
        docker_config=docker_config(),
    )


def docker_config() -> tuple[str, str] | None:
    """The docker CLI's config.json (``$DOCKER_CONFIG/config.json``), with its path."""
    folder = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    path = Path(folder) / "config.json"
    if not path.exists():
        return None
    return read_text(path, what="docker config"), str(path)


def index_credentials(environ: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Index credentials from ``REPROLOCK_INDEX_<NAME>_USERNAME`` and ``_PASSWORD``.

    ``<NAME>`` is the index name upper-cased, with every other character than a
    letter or digit written as ``_`` (index "pytorch-cu124" → ``PYTORCH_CU124``).
    """
    found: dict[str, tuple[str, str]] = {}
    for key, user in environ.items():
        match = re.fullmatch(r"REPROLOCK_INDEX_(\w+)_USERNAME", key)
        if match:
            password = environ.get(f"REPROLOCK_INDEX_{match.group(1)}_PASSWORD", "")
            found[match.group(1)] = (user, password)
    return found


@click.command("lock")
@spec_option
@lock_option
@click.option(
    "--upgrade", "-U", is_flag=True, help="Ignore existing pins: take the newest that fit."
)
@click.option(
    "--upgrade-package",
    "-P",
    "upgrade_packages",
    multiple=True,
    metavar="NAME",
    help="Let NAME move to its newest fitting version (repeatable).",
)
@click.option(
    "--refresh-base",
    is_flag=True,
    help="Pin the base image again (its tag may point elsewhere now); nothing else moves.",
)
@click.option(
    "--refresh",
    is_flag=True,
    help="Revalidate cached index pages (implied by --upgrade and --upgrade-package).",
)
@click.option(
    "--measure-kernels",
    is_flag=True,
    help="Measure the GPU kernels of framework builds the tables lack, from their wheels "
    "(cached by sha256), instead of refusing them; and those of every locked CUDA extension "
    "(recorded in the lock's cuda.extensions).",
)
@click.option(
    "--strict-latest",
    "strict_latest",
    multiple=True,
    metavar="NAME",
    help="Fail (exit 3) when NAME is locked below the newest version its requirements allow "
    "because the newer one has no usable file for the target (repeatable).",
)
def lock_command(
    spec_path: Path | None,
    lock_path: Path | None,
    upgrade: bool,
    upgrade_packages: tuple[str, ...],
    refresh_base: bool,
    refresh: bool,
    measure_kernels: bool,
    strict_latest: tuple[str, ...],
) -> None:
    """Resolve the spec for each target and write the lock.

    Pins in an existing lock are kept while they still satisfy the spec
    (minimal updates); --upgrade and --upgrade-package move them. Index pages
    fetched in the last 10 minutes are reused unless --refresh is given.

    The base image is read (never run) for its C library, interpreters, CUDA and
    users; the venv's Python is chosen under [python] interpreter (the base's, the
    distribution's python3.X, or a standalone build). Exit 3 when no interpreter or
    resolution fits, with the nearest fixes.

    A package locked below the newest version its requirements allow because the newer
    one has no usable file for the target (no wheel for it, only an sdist, a
    Requires-Python that excludes it, or a dependency with none of those) is named on
    stderr and recorded in the lock; --strict-latest NAME makes that an error.
    """
    settings = output.current()
    net = net_options(settings, refresh=refresh or upgrade or bool(upgrade_packages))
    cache = net.cache_dir

    def resolving(spec: Spec) -> None:
        if not net.config.offline and cache is not None and not (cache / "http").is_dir():
            # A cache without a single index page: this lock fetches them all.  The page
            # workers start now, importing while this process does, not when a page is due.
            from reprolock.resolve.python import page_parse  # noqa: PLC0415 - resolving only

            requirements = 0 if spec.python is None else len(spec.python.requirements)
            page_parse.boot(page_parse.workers_for(requirements))

    result = lock(
        spec_path,
        lock_path,
        cwd=Path(),
        net=net,
        upgrade=upgrade,
        upgrade_packages=upgrade_packages,
        refresh_base=refresh_base,
        observer=ProgressLine.for_terminal("locking", settings.verbosity < 0),
        measure_kernels=measure_kernels,
        strict_latest=strict_latest,
        resolving=resolving,
    )
    for warning in result.warnings:
        settings.warn(warning)
    if settings.format == "json":
        settings.emit_json(
            {
                "lock": str(result.lock_path),
                "changed": result.changed,
                "targets": {t.id: len(t.packages) for t in result.lock.targets},
                "warnings": list(result.warnings),
                "downgrades": {
                    t.id: [
                        {
                            "name": d.name,
                            "version": d.version,
                            "newest": d.newest,
                            "reason": d.reason,
                        }
                        for d in t.downgrades
                    ]
                    for t in result.lock.targets
                    if t.downgrades
                },
                "base-changes": list(result.base_changes),
            }
        )
        return
    for target in result.lock.targets if not result.up_to_date else ():
        for line in summary(target, verbosity=settings.verbosity):
            settings.say(line)
    # Why versions were rejected is worked out on demand (select.py): only when shown.
    for resolution in result.resolutions if settings.verbosity >= 2 else ():
        for name, selection in resolution.selections.items():
            for version, reasons in sorted(selection.rejected.items(), reverse=True):
                settings.say(f"  rejected {name} {version}: {'; '.join(reasons)}", level=2)
    if result.up_to_date:
        settings.say(
            f"{result.lock_path} is up to date with {result.spec_path} (--refresh re-resolves)"
        )
        return
    for change in result.base_changes:
        settings.say(change)
    verb = "wrote" if result.changed else "unchanged:"
    settings.say(f"{verb} {result.lock_path}")


def summary(target: LockedTarget, *, verbosity: int = 0) -> list[str]:
    """One line per section of a locked target (base, apt, Python, CUDA); with -v the
    pins under each."""
    tid = target.id
    lines = []
    base = target.base
    if base is not None:
        digest = base.manifest_digest if verbosity >= 1 else base.manifest_digest[:19]
        facts = base.facts
        held = [] if facts is None else [f"{facts.os_id} {facts.os_version}".strip()]
        if facts is not None and facts.libc:
            held.append(f"{facts.libc} {facts.libc_version or '?'}")
        if target.interpreter is not None:
            i = target.interpreter
            held.append(f"Python {i.version} from {i.source.value}")
        shown = f" ({', '.join(h for h in held if h)})" if any(held) else ""
        lines.append(f"{tid}: base {base.ref.split('@', 1)[0]}@{digest}{shown}")
    if target.apt:
        snapshot = f" (snapshot {target.apt_snapshot})" if target.apt_snapshot else ""
        lines.append(f"{tid}: {_count(len(target.apt), 'apt package')}{snapshot}")
        if verbosity >= 1:
            lines += [f"  {p.name}={p.version}" for p in sorted(target.apt, key=lambda p: p.name)]
    if target.packages or not lines:
        lines.append(f"{tid}: {_count(len(target.packages), 'Python package')}")
    if verbosity >= 1:
        lines += [f"  {p.name}=={p.version}" for p in target.packages]
    cuda = target.cuda
    if cuda is not None:
        compat = (
            f" (>= {cuda.driver_min_compat} with minor-version compatibility)"
            if cuda.driver_min_compat and cuda.driver_min_compat != cuda.driver_min
            else ""
        )
        lines.append(f"{tid}: CUDA {cuda.toolkit}, driver >= {cuda.driver_min}{compat}")
    return lines


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'s' if n != 1 else ''}"
