"""The Python layer of a lock: indexes from the spec, resolution per target, lock entries."""

from __future__ import annotations

import contextlib
import ctypes
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from reprolock.api.heap import fewer_collections
from reprolock.api.network import NetOptions, credential_key, with_credentials
from reprolock.api.progress import Observer, Silent
from reprolock.api.project import shipped_matrices
from reprolock.api.sdist_layer import SdistBuilds
from reprolock.errors import SourceError
from reprolock.lock import (
    BaseFacts,
    LockedDowngrade,
    LockedTarget,
    PythonPackage,
    Sdist,
    Wheel,
)
from reprolock.model import Platform, PythonVersion
from reprolock.net.cache import Cache
from reprolock.net.session import new_session
from reprolock.resolve.python.finder import Fetcher
from reprolock.resolve.python.http_index import PAGE_TTL, HttpIndex, strip_credentials
from reprolock.resolve.python.provider import Patches
from reprolock.resolve.python.resolve import Pin, PythonResolution, resolve_python
from reprolock.resolve.python.routing import IndexRouter, RoutedIndex
from reprolock.resolve.python.target import PythonTarget, libc_of, wheel_filter
from reprolock.spec import Spec
from reprolock.stack.plan import Route, StackPlan, route_story

PYPI = "https://pypi.org/simple"


def target_id(target: PythonTarget) -> str:
    return f"py{target.python.feature}-{target.platform.short}"


def targets_of(
    spec: Spec,
    pythons: Mapping[Platform, PythonVersion] | None = None,
    facts: Mapping[Platform, BaseFacts] | None = None,
) -> list[PythonTarget]:
    """One target per platform; ``pythons`` gives the exact interpreter version per
    platform when it is known (``3.11`` → ``3.11.2``), ``facts`` the base image's C library
    (its wheel tags: ``manylinux_2_36`` on bookworm, musllinux on musl)."""
    env = spec.environment
    out = []
    for p in env.platforms:
        found = (facts or {}).get(p)
        libc = libc_of(found.libc, found.libc_version) if found is not None else {}
        out.append(PythonTarget(python=(pythons or {}).get(p, env.python), platform=p, **libc))
    return out


def locked_pythons(
    spec: Spec, targets: Iterable[LockedTarget]
) -> tuple[dict[Platform, PythonVersion], dict[Platform, BaseFacts]]:
    """The interpreter versions and base facts a lock already records, per platform (for
    commands that resolve again offline-first: explain)."""
    pythons: dict[Platform, PythonVersion] = {}
    facts: dict[Platform, BaseFacts] = {}
    for t in targets:
        if t.base is not None and t.base.facts is not None:
            facts[t.platform] = t.base.facts
        version = t.interpreter.version if t.interpreter is not None else None
        with contextlib.suppress(ValueError):
            if version is not None:
                found = PythonVersion.parse_exact(version)
                if found.feature == spec.environment.python.feature:
                    pythons[t.platform] = found
    return pythons, facts


@contextlib.contextmanager
def open_router(
    spec: Spec,
    net: NetOptions,
    routes: Sequence[Route] = (),
    targets: Sequence[PythonTarget] = (),
) -> Iterator[tuple[IndexRouter, list[HttpIndex]]]:
    """The spec's indexes (PyPI unless another is the default), and the routes the stack
    solver adds (torch to its variant index), behind one router.

    Pages are parsed for ``targets`` only (the spec's, by default): wheels none of them
    can install are kept by name alone.
    """
    accept = wheel_filter(targets or targets_of(spec))
    session = new_session(net.config)
    cache = Cache(net.cache_dir)
    indexes: list[HttpIndex] = []

    def make(name: str, url: str, packages: tuple[str, ...] = ()) -> RoutedIndex:
        index = HttpIndex(
            with_credentials(url, net.credentials.get(credential_key(name))),
            session,
            cache,
            offline=net.config.offline,
            page_ttl=0.0 if net.refresh else PAGE_TTL,
            wheel_filter=accept,
            net_config=net.config,
        )
        indexes.append(index)
        return RoutedIndex(
            name,
            strip_credentials(url.rstrip("/")),
            index,
            frozenset(canonicalize_name(p) for p in packages),
        )

    specs = spec.python.indexes if spec.python else ()
    default_spec = next((i for i in specs if i.default), None)
    default = (
        make(default_spec.name, default_spec.url, default_spec.packages)
        if default_spec
        else make("pypi", PYPI)
    )
    extras = [make(r.name, r.url, r.packages) for r in routes]
    extras += [make(i.name, i.url, i.packages) for i in specs if not i.default]
    try:
        yield IndexRouter(default, extras), indexes
    finally:
        for index in indexes:
            index.close()
        session.close()


def _total(indexes: list[HttpIndex]) -> Mapping[str, int]:
    total: dict[str, int] = {}
    for index in indexes:
        for key, value in index.stats.items():
            total[key] = total.get(key, 0) + value
    return total


def _return_large_buffers() -> None:
    """Have glibc give memory of large blocks back when they are freed.

    A lock reads hundreds of index pages, megabytes each, on a pool of threads.  glibc
    raises its mmap threshold after the first large block is freed, so later pages land in
    per-thread heaps that keep the memory: the kitchen-sink lock peaked at about 215 MiB,
    160 MiB with the threshold held at its default.  Elsewhere (musl, macOS) nothing to do.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        return
    mallopt(_M_MMAP_THRESHOLD, 128 * 1024)


_M_MMAP_THRESHOLD = -3  # <malloc.h>


def resolve_targets(
    spec: Spec,
    net: NetOptions,
    targets: list[PythonTarget],
    *,
    previous: Mapping[str, LockedTarget],
    keep_pins: bool,
    upgrade_packages: frozenset[NormalizedName],
    observer: Observer | None = None,
    plans: Mapping[str, StackPlan] | None = None,
    patches: Patches | None = None,
) -> list[tuple[str, PythonTarget, PythonResolution | None]]:
    """Resolve every target; ``previous`` pins are preferred unless upgraded.

    ``plans`` (per target id) add the stack solver's routes and constraints; targets that
    share routes share one router, so their index pages are fetched once."""
    observer = observer or Silent()
    plans = plans or {}
    if sys.platform == "linux":
        _return_large_buffers()
    results: dict[str, tuple[str, PythonTarget, PythonResolution | None]] = {}
    groups: dict[tuple[Route, ...], list[PythonTarget]] = {}
    for target in targets:
        plan = plans.get(target_id(target))
        groups.setdefault(plan.routes if plan else (), []).append(target)
    with contextlib.closing(new_session(net.config)) as sdist_session:
        for routes, members in groups.items():
            with (
                fewer_collections(),
                _explained_routes(routes, plans.get(target_id(members[0]))),
                open_router(spec, net, routes, members) as (router, indexes),
                observer.watch(lambda indexes=indexes: _total(indexes)),  # type: ignore[misc]
            ):
                fetcher = Fetcher(router)
                builds = (
                    SdistBuilds(
                        spec.python,
                        fetcher,
                        sdist_session,
                        Cache(net.cache_dir),
                        offline=net.config.offline,
                    )
                    if spec.python is not None
                    else None
                )
                try:
                    for target in members:
                        tid = target_id(target)
                        if spec.python is None:
                            results[tid] = (tid, target, None)
                            continue
                        preferred = (
                            preferred_pins(previous.get(tid), upgrade_packages) if keep_pins else {}
                        )
                        plan = plans.get(tid)
                        constraints = {
                            canonicalize_name(n): c
                            for n, c in (plan.constraints if plan else {}).items()
                        }
                        resolution = resolve_python(
                            spec.python,
                            target,
                            fetcher,
                            preferred=preferred,
                            constraints=constraints,
                            patches=patches,
                            reasons={
                                canonicalize_name(n): r
                                for n, r in (plan.reasons if plan else {}).items()
                            },
                            index_urls=index_urls(router),
                            sdists=builds,
                        )
                        if builds is not None:
                            for name, pin in resolution.pins.items():
                                if pin.release.is_sdist:
                                    resolution.builds[name] = builds.build_env(
                                        pin.release.wheel, target
                                    )
                        results[tid] = (tid, target, resolution)
                finally:
                    fetcher.close()
    return [results[target_id(t)] for t in targets]


@contextlib.contextmanager
def _explained_routes(routes: Sequence[Route], plan: StackPlan | None) -> Iterator[None]:
    """An index reprolock itself routed packages to (download.pytorch.org) that fails says
    so: that reprolock chose it and why, how to use a mirror, whether PyPI would do."""
    try:
        yield
    except SourceError as exc:
        route = next((r for r in routes if r.url in exc.message), None)
        if route is None or plan is None:
            raise
        story = route_story(plan, route, shipped_matrices())
        raise SourceError(
            exc.message,
            hint=f"The spec does not name this index: {story} To use a mirror of it, set [python] "
            'pytorch-index = "https://mirror.example.com/whl" (a copy of '
            f"{route.url.rsplit('/', 1)[0]} that serves {route.url.rsplit('/', 1)[1]}/); with "
            "a filled cache, --offline works without the network.",
        ) from None


def preferred_pins(
    target: LockedTarget | None, upgrade: frozenset[NormalizedName]
) -> dict[NormalizedName, Version]:
    if target is None:
        return {}
    out: dict[NormalizedName, Version] = {}
    for package in target.packages:
        name = canonicalize_name(package.name)
        if name in upgrade:
            continue
        with contextlib.suppress(InvalidVersion):
            out[name] = Version(package.version)
    return out


def index_urls(router: IndexRouter) -> Callable[[NormalizedName], list[str]]:
    """The URLs (without credentials) of the indexes a project is looked up on."""
    return lambda name: [r.url for r in router.candidates_for(name)]


def locked_downgrades(resolution: PythonResolution) -> tuple[LockedDowngrade, ...]:
    return tuple(
        LockedDowngrade(name=d.name, version=str(d.version), newest=str(d.newest), reason=d.reason)
        for d in resolution.downgrades
    )


def locked_packages(resolution: PythonResolution) -> tuple[PythonPackage, ...]:
    return tuple(_locked(pin, resolution) for pin in resolution.pins.values())


def _locked(pin: Pin, resolution: PythonResolution) -> PythonPackage:
    file = pin.release.wheel
    if pin.release.is_sdist:
        assert file.sha256 is not None  # selection offers hashed sdists only
        return PythonPackage(
            name=pin.name,
            version=str(pin.version),
            index=file.index,
            dependencies=pin.dependencies,
            sdist=Sdist(
                filename=file.filename,
                url=strip_credentials(file.url),
                sha256=file.sha256,
                size=file.size,
            ),
            build=resolution.builds[pin.name],
        )
    return PythonPackage(
        name=pin.name,
        version=str(pin.version),
        index=file.index,
        dependencies=pin.dependencies,
        wheels=(
            Wheel(
                filename=file.filename,
                url=strip_credentials(file.url),
                sha256=file.sha256,
                size=file.size,
            ),
        ),
    )
