"""The apt layer of a lock: the base image's distribution, its archives, the closure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from reprolock.api.base_image import STATUS, BaseFiles, read_base
from reprolock.api.network import NetOptions
from reprolock.api.project import read_project_file
from reprolock.apt.archive import AptArchives
from reprolock.apt.index import Candidate, parse_status
from reprolock.apt.solve import AptPlan, Universe, Want, solve
from reprolock.apt.sources import AptSource, parse_sources, rewrite
from reprolock.errors import InputError, SourceError
from reprolock.lock import AptPackage, LockedBase
from reprolock.model import Platform
from reprolock.net.cache import Cache
from reprolock.net.session import new_session
from reprolock.spec import AptSpec, Spec

__all__ = ["BaseFiles", "base_files"]  # BaseFiles: what tests and callers build results from


def base_files(base: LockedBase, platform: Platform, spec: Spec, net: NetOptions) -> BaseFiles:
    """The pinned base image's apt files (read with its facts, cached by manifest digest)."""
    return read_base(base, platform, spec, net).files


@dataclass(slots=True)
class AptResult:
    packages: tuple[AptPackage, ...]
    plan: AptPlan
    sources: list[AptSource]
    notes: list[str] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    installed: dict[str, str] = field(default_factory=dict)  # the base image's dpkg status


def spec_keyrings(spec: Spec, spec_dir: Path) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    if spec.apt is None:
        return out
    for name in spec.apt.keyrings:
        try:
            out[f"spec:{name}"] = read_project_file(
                spec_dir, name, what="apt keyring", limit_name="document_bytes"
            )
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise InputError(
                f"[apt] keyrings: cannot read {spec_dir / name}: {reason}.",
                hint="Give the path of a .gpg or .asc key inside the project, relative to "
                "the spec.",
            ) from None
    return out


@dataclass(slots=True)
class AptArchive:
    """The archives of a base image's sources, read for one target: what can be installed
    on top of what the image has."""

    universe: Universe
    sources: list[AptSource]
    notes: list[str] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    installed: dict[str, str] = field(default_factory=dict)  # the base image's dpkg status


def no_sources(target: str) -> str:
    return (
        f"{target}: the base image has no apt sources (/etc/apt/sources.list or "
        "sources.list.d), so there is no archive to pin apt packages from"
    )


def load_archive(
    spec: Spec,
    target: str,
    platform: Platform,
    files: BaseFiles,
    net: NetOptions,
    *,
    keyrings: Mapping[str, bytes],
    now: datetime | None = None,
) -> AptArchive:
    """The packages of the base image's (rewritten) sources, and its dpkg status."""
    apt = spec.apt or AptSpec(packages=())
    status = files.text(STATUS)
    declared = parse_sources(files.sources())
    if not declared:
        raise SourceError(
            no_sources(target) + ".",
            hint="Use a Debian or Ubuntu based image, or drop [apt].",
        )
    sources, notes = rewrite(declared, snapshot=apt.snapshot, mirror=apt.mirror)
    arch = platform.debian_arch
    session = new_session(net.config)
    archives = AptArchives(
        session,
        Cache(net.cache_dir),
        keyrings={**files.keyrings(), **keyrings},
        allow_unsigned=apt.allow_unsigned,
        snapshot=apt.snapshot is not None,
        offline=net.config.offline,
        now=now or datetime.now(UTC),
    )
    available: list[Candidate] = []
    try:
        for source in sources:
            release = archives.release(source)
            for component in source.components or ("",):
                if release.components and component not in release.components:
                    notes.append(f"{source.describe()}: the archive has no component {component}")
                    continue
                available.extend(archives.packages(source, release, component, arch))
    finally:
        session.close()
    installed = parse_status(status, arch=arch)
    return AptArchive(
        universe=Universe(available, installed, arch),
        sources=sources,
        notes=notes,
        stats=dict(archives.stats),
        installed={c.name: c.version for c in installed},
    )


def solve_wants(archive: AptArchive, wants: Sequence[str], *, target: str) -> AptResult:
    """The closure of ``wants`` (``name`` or ``name=version``) on the loaded archive."""
    plan = solve(archive.universe, [Want.parse(p) for p in wants], target=target)
    packages = tuple(
        AptPackage(
            name=c.name,
            version=c.version,
            architecture=c.architecture,
            sha256=c.sha256,
            size=c.size,
            url=c.url,
        )
        for c in plan.ordered()
    )
    return AptResult(
        packages=packages,
        plan=plan,
        sources=archive.sources,
        notes=[*archive.notes, *plan.notes],
        stats=dict(archive.stats),
        installed=dict(archive.installed),
    )


def wanted_packages(spec: Spec, extra: Sequence[str] = ()) -> list[str]:
    """``[apt] packages`` and the packages an apt interpreter adds, each once."""
    own = list(spec.apt.packages) if spec.apt is not None else []
    named = {Want.parse(p).name for p in own}
    return own + sorted({p for p in extra if p not in named})


def resolve_apt(
    spec: Spec,
    target: str,
    platform: Platform,
    files: BaseFiles,
    net: NetOptions,
    *,
    keyrings: Mapping[str, bytes],
    now: datetime | None = None,
    extra: Sequence[str] = (),
) -> AptResult:
    """The closure of ``[apt] packages`` (and ``extra``) on the base image, from its
    (rewritten) sources."""
    archive = load_archive(spec, target, platform, files, net, keyrings=keyrings, now=now)
    return solve_wants(archive, wanted_packages(spec, extra), target=target)


def lock_apt(
    spec: Spec,
    spec_dir: Path,
    bases: Mapping[Platform, LockedBase],
    net: NetOptions,
    targets: Mapping[Platform, str],
    extra: Mapping[Platform, Sequence[str]] | None = None,
) -> dict[Platform, AptResult]:
    """The apt closure per platform (one per target): ``[apt] packages`` and the packages
    ``extra`` adds (an apt interpreter); `InputError` without a base image."""
    extra = extra or {}
    out = {}
    for platform, target in targets.items():
        if not wanted_packages(spec, extra.get(platform, ())):
            continue
        base = bases.get(platform)
        if base is None:
            raise InputError(
                f"{target}: [apt] packages need a base image to know the distribution, its "
                "archives and what is installed already.",
                hint='Add [base] ref = "debian:bookworm-slim" (or image = "nvidia/cuda").',
            )
        files = base_files(base, platform, spec, net)
        out[platform] = resolve_apt(
            spec,
            target,
            platform,
            files,
            net,
            keyrings=spec_keyrings(spec, spec_dir),
            extra=extra.get(platform, ()),
        )
    return out
