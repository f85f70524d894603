"""The Python layer of a lock: indexes from the spec, resolution per target, lock entries."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, urlsplit, urlunsplit

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from reprolock.lock import LockedTarget, PythonPackage, Wheel
from reprolock.net import Cache, NetConfig, new_session
from reprolock.resolve.python.finder import Fetcher
from reprolock.resolve.python.http_index import PAGE_TTL, HttpIndex, strip_credentials
from reprolock.resolve.python.resolve import PythonResolution, resolve_python
from reprolock.resolve.python.routing import IndexRouter, RoutedIndex
from reprolock.resolve.python.target import PythonTarget, wheel_filter
from reprolock.spec import Spec

PYPI = "https://pypi.org/simple"

Stats = Callable[[], Mapping[str, int]]


class Observer(Protocol):
    """Shows progress while the network works (the CLI's progress line)."""

    def watch(self, stats: Stats) -> AbstractContextManager[None]: ...


class _Silent:
    def watch(self, stats: Stats) -> AbstractContextManager[None]:
        del stats
        return contextlib.nullcontext()


@dataclass(frozen=True, slots=True, kw_only=True)
class NetOptions:
    config: NetConfig
    cache_dir: Path | None
    refresh: bool = False  # revalidate every cached index page, however young
    # index name -> (username, password), from REPROLOCK_INDEX_<NAME>_USERNAME/_PASSWORD
    credentials: Mapping[str, tuple[str, str]] = field(default_factory=dict)


def credential_key(index_name: str) -> str:
    """How an index name appears in credential variables: ``pytorch-cu124`` → ``PYTORCH_CU124``."""
    return re.sub(r"[^A-Za-z0-9]", "_", index_name).upper()


def with_credentials(url: str, credentials: tuple[str, str] | None) -> str:
    """``url`` with user and password inserted, unless it already carries some."""
    if credentials is None:
        return url
    parts = urlsplit(url)
    if "@" in parts.netloc:
        return url
    user, password = (quote(c, safe="") for c in credentials)
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.netloc}"))


def target_id(target: PythonTarget) -> str:
    return f"py{target.python.feature}-{target.platform.short}"


def targets_of(spec: Spec) -> list[PythonTarget]:
    env = spec.environment
    return [PythonTarget(python=env.python, platform=p) for p in env.platforms]


@contextlib.contextmanager
def open_router(spec: Spec, net: NetOptions) -> Iterator[tuple[IndexRouter, list[HttpIndex]]]:
    """The spec's indexes (PyPI unless another is the default) behind one router.

    Pages are parsed for the spec's targets only: wheels none of them can install
    are kept by name alone.
    """
    accept = wheel_filter(targets_of(spec))
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
    extras = [make(i.name, i.url, i.packages) for i in specs if not i.default]
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


def resolve_targets(
    spec: Spec,
    net: NetOptions,
    *,
    previous: Mapping[str, LockedTarget],
    keep_pins: bool,
    upgrade_packages: frozenset[NormalizedName],
    observer: Observer | None = None,
) -> list[tuple[str, PythonTarget, PythonResolution | None]]:
    """Resolve every target; ``previous`` pins are preferred unless upgraded."""
    observer = observer or _Silent()
    out: list[tuple[str, PythonTarget, PythonResolution | None]] = []
    with open_router(spec, net) as (router, indexes), observer.watch(lambda: _total(indexes)):
        fetcher = Fetcher(router)
        try:
            for target in targets_of(spec):
                tid = target_id(target)
                if spec.python is None:
                    out.append((tid, target, None))
                    continue
                preferred = preferred_pins(previous.get(tid), upgrade_packages) if keep_pins else {}
                out.append(
                    (tid, target, resolve_python(spec.python, target, fetcher, preferred=preferred))
                )
        finally:
            fetcher.close()
    return out


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


def locked_packages(resolution: PythonResolution) -> tuple[PythonPackage, ...]:
    return tuple(
        PythonPackage(
            name=pin.name,
            version=str(pin.version),
            index=pin.release.wheel.index,
            dependencies=pin.dependencies,
            wheels=(
                Wheel(
                    filename=pin.release.wheel.filename,
                    url=strip_credentials(pin.release.wheel.url),
                    sha256=pin.release.wheel.sha256,
                    size=pin.release.wheel.size,
                ),
            ),
        )
        for pin in resolution.pins.values()
    )
