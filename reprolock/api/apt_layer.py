"""The apt layer of a lock: the base image's distribution, its archives, the closure."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from reprolock import limits
from reprolock.api.base_layer import registry_client, spec_registry_options
from reprolock.api.network import NetOptions
from reprolock.api.project import read_project_file
from reprolock.apt.archive import AptArchives
from reprolock.apt.index import Candidate, parse_status
from reprolock.apt.solve import AptPlan, Universe, Want, solve
from reprolock.apt.sources import AptSource, parse_sources, rewrite
from reprolock.errors import InputError, SourceError
from reprolock.image.read import read_image
from reprolock.image.registry_source import RegistryImage
from reprolock.lock import AptPackage, LockedBase
from reprolock.model import Digest, ImageRef, Platform
from reprolock.net.cache import Cache
from reprolock.net.session import new_session
from reprolock.spec import Spec

STATUS = "var/lib/dpkg/status"


def _wanted(path: str) -> bool:
    if path in (STATUS, "etc/apt/sources.list", "etc/apt/trusted.gpg"):
        return True
    if path.startswith(("etc/apt/sources.list.d/", "etc/apt/trusted.gpg.d/")):
        return True
    return path.startswith("usr/share/keyrings/") and path.endswith((".gpg", ".asc"))


@dataclass(frozen=True, slots=True, kw_only=True)
class BaseFiles:
    """What the apt layer needs from the base image: dpkg status, sources, keys."""

    files: Mapping[str, bytes]

    def text(self, path: str) -> str:
        return self.files.get(path, b"").decode("utf-8", "replace")

    def sources(self) -> dict[str, str]:
        return {
            p: self.text(p)
            for p in self.files
            if p == "etc/apt/sources.list" or p.startswith("etc/apt/sources.list.d/")
        }

    def keyrings(self) -> dict[str, bytes]:
        return {
            p: v
            for p, v in self.files.items()
            if p == "etc/apt/trusted.gpg"
            or p.startswith(("etc/apt/trusted.gpg.d/", "usr/share/keyrings/"))
        }


def base_files(base: LockedBase, platform: Platform, spec: Spec, net: NetOptions) -> BaseFiles:
    """Read the pinned base image's apt files from its registry (cached by manifest digest:
    the digest pins the content)."""
    cache = Cache(net.cache_dir)
    key = Digest.parse(base.manifest_digest).hex
    cached = cache.get_ref("apt-base", key, cap=limits.current().catalog_total_bytes * 2)
    if cached is not None and (from_cache := _decode_files(cached)) is not None:
        return BaseFiles(files=from_cache)
    if net.config.offline:
        raise SourceError(
            f"{base.ref}: its apt files are not cached, and --offline forbids reading the image.",
            hint="Run `reprolock lock` once online.",
        )
    ref = ImageRef.parse(base.ref)
    pinned = ImageRef(
        registry=ref.registry,
        repository=ref.repository,
        tag=ref.tag,
        digest=Digest.parse(base.manifest_digest),
    )
    client = registry_client(net, spec_registry_options(spec))
    image = RegistryImage(client, pinned, platform)
    read = read_image(image, want_content=_wanted, want_hash=lambda _p: False)
    files: dict[str, bytes] = {}
    for node in read.view.walk():
        path = node.entry.path
        if _wanted(path) and (content := read.view.read(path)) is not None:
            files[path] = content
    cache.put_ref(
        "apt-base",
        key,
        json.dumps({k: base64.b64encode(v).decode() for k, v in sorted(files.items())}).encode(),
    )
    return BaseFiles(files=files)


def _decode_files(data: bytes) -> dict[str, bytes] | None:
    """The cached apt files of a base image; None when the entry is damaged (a miss)."""
    try:
        value = json.loads(data)
        if not isinstance(value, dict):
            return None
        return {
            str(k): base64.b64decode(v, validate=True)
            for k, v in value.items()
            if isinstance(k, str) and isinstance(v, str) and _wanted(k)
        }
    except (ValueError, RecursionError, binascii.Error):
        return None


@dataclass(slots=True)
class AptResult:
    packages: tuple[AptPackage, ...]
    plan: AptPlan
    sources: list[AptSource]
    notes: list[str] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    installed: dict[str, str] = field(default_factory=dict)  # the base image's dpkg status


def spec_keyrings(spec: Spec, spec_dir: Path) -> dict[str, bytes]:
    out = {}
    assert spec.apt is not None
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


def resolve_apt(
    spec: Spec,
    target: str,
    platform: Platform,
    files: BaseFiles,
    net: NetOptions,
    *,
    keyrings: Mapping[str, bytes],
    now: datetime | None = None,
) -> AptResult:
    """The closure of ``[apt] packages`` on the base image, from its (rewritten) sources."""
    apt = spec.apt
    assert apt is not None
    status = files.text(STATUS)
    if not files.sources():
        raise SourceError(
            f"{target}: the base image has no apt sources (/etc/apt/sources.list or "
            "sources.list.d), so there is no archive to pin [apt] packages from.",
            hint="Use a Debian or Ubuntu based image, or drop [apt].",
        )
    sources, notes = rewrite(
        parse_sources(files.sources()), snapshot=apt.snapshot, mirror=apt.mirror
    )
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
    universe = Universe(available, installed, arch)
    plan = solve(universe, [Want.parse(p) for p in apt.packages], target=target)
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
    notes.extend(plan.notes)
    return AptResult(
        packages=packages,
        plan=plan,
        sources=sources,
        notes=notes,
        stats=dict(archives.stats),
        installed={c.name: c.version for c in installed},
    )


def lock_apt(
    spec: Spec,
    spec_dir: Path,
    bases: Mapping[Platform, LockedBase],
    net: NetOptions,
    targets: Mapping[Platform, str],
) -> dict[Platform, AptResult]:
    """The apt closure per platform (one per target); `InputError` without a base image."""
    if spec.apt is None or not spec.apt.packages:
        return {}
    keyrings = spec_keyrings(spec, spec_dir)
    out = {}
    for platform, target in targets.items():
        base = bases.get(platform)
        if base is None:
            raise InputError(
                f"{target}: [apt] packages need a base image to know the distribution, its "
                "archives and what is installed already.",
                hint='Add [base] ref = "debian:bookworm-slim" (or image = "nvidia/cuda").',
            )
        files = base_files(base, platform, spec, net)
        out[platform] = resolve_apt(spec, target, platform, files, net, keyrings=keyrings)
    return out
