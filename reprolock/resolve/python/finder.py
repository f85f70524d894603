"""Fetch pages and metadata ahead of the resolver, in a bounded thread pool.

resolvelib asks for one thing at a time; the network answers slowly.  The
finder starts fetching a project's page as soon as the project is named, and
the metadata of its most likely candidate as soon as the page arrives, so most
answers are ready when the resolver asks.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from packaging.specifiers import SpecifierSet
from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)

from reprolock.resolve.python.index import DistFile, PythonIndex
from reprolock.resolve.python.metadata import CoreMetadata, check_identity, parse_metadata
from reprolock.resolve.python.select import (
    CoreSelection,
    Release,
    Selection,
    select_core,
    selection_for,
)
from reprolock.resolve.python.target import PythonTarget

T = TypeVar("T")


class Fetcher:
    """Shared by every target of one lock: each page and metadata file is fetched once."""

    def __init__(self, index: PythonIndex, *, workers: int = 16) -> None:
        self.index = index
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="reprolock-fetch")
        self._pages: dict[NormalizedName, Future[list[DistFile]]] = {}
        self._metadata: dict[str, Future[CoreMetadata]] = {}
        self._cores: dict[tuple[object, ...], Future[CoreSelection]] = {}
        self._lock = threading.Lock()
        self._parsing = threading.Lock()
        self.closed = False

    def page(self, name: NormalizedName) -> Future[list[DistFile]]:
        with self._lock:
            future = self._pages.get(name)
            if future is None:
                future = self._submit(lambda: list(self.index.project_files(name)))
                self._pages[name] = future
            return future

    def metadata(self, file: DistFile) -> Future[CoreMetadata]:
        with self._lock:
            future = self._metadata.get(file.url)
            if future is None:
                future = self._submit(lambda: self._read_metadata(file))
                self._metadata[file.url] = future
            return future

    def _read_metadata(self, file: DistFile) -> CoreMetadata:
        data = self.index.metadata(file)
        # One at a time: parsing holds the interpreter's lock anyway, and packaging's
        # marker parser uses `ast`, whose constructor CPython 3.11 does not make safe
        # across threads ("AST constructor recursion depth mismatch", gh-106905).
        with self._parsing:
            return check_identity(parse_metadata(data), file.filename, file.index)

    def core_selection(
        self, key: tuple[object, ...], compute: Callable[[], CoreSelection]
    ) -> CoreSelection:
        """The core selection named ``key``, computed once (by whoever asks first): targets
        that share a tag set share it."""
        with self._lock:
            future = self._cores.get(key)
            owner = future is None
            if future is None:
                future = self._cores[key] = Future()
        if owner:
            try:
                future.set_result(compute())
            except BaseException as exc:
                future.set_exception(exc)
                raise
        return future.result()

    def _submit(self, work: Callable[[], T]) -> Future[T]:
        try:
            return self.pool.submit(work)
        except RuntimeError:  # shut down: a late speculative request, not worth running
            future: Future[T] = Future()
            future.cancel()
            return future

    def close(self) -> None:
        self.closed = True  # speculative callbacks still running stop submitting work
        self.pool.shutdown(wait=True, cancel_futures=True)


class Finder:
    """Per target: the installable releases of each project, and their metadata."""

    def __init__(
        self,
        fetcher: Fetcher,
        target: PythonTarget,
        *,
        exclude_newer: dt.datetime | None,
        allow_unhashed: frozenset[NormalizedName] = frozenset(),
        choose: Callable[[NormalizedName, SpecifierSet, Selection], Release | None] | None = None,
    ) -> None:
        self.fetcher = fetcher
        self.target = target
        self.exclude_newer = exclude_newer
        self.allow_unhashed = allow_unhashed
        self.choose = choose
        self._selections: dict[NormalizedName, Selection] = {}
        self._speculated: set[NormalizedName] = set()
        self._lock = threading.Lock()

    def selection(self, name: NormalizedName) -> Selection:
        with self._lock:
            if name in self._selections:
                return self._selections[name]
        files = self.fetcher.page(name).result()
        unhashed_ok = name in self.allow_unhashed
        if not unhashed_ok:
            hashed = [f for f in files if f.sha256 or not f.is_wheel]
            unhashed = [f for f in files if not f.sha256 and f.is_wheel]
        else:
            hashed, unhashed = files, []
        core = self.fetcher.core_selection(
            (name, self.target.selection_key, self.exclude_newer, unhashed_ok),
            lambda: select_core(name, hashed, self.target, exclude_newer=self.exclude_newer),
        )
        selection = selection_for(
            name, core, self.target, other_files=self.fetcher.index.other_files(name)
        )
        installable = {r.version for r in selection.releases}
        for file in unhashed:
            try:
                _name, version, _build, _tags = parse_wheel_filename(file.filename)
            except InvalidWheelFilename:
                continue
            if version not in installable:
                selection.reject(
                    version,
                    f"{file.filename} has no sha256 on the index; add "
                    f'"{name}" to python.allow-unhashed to accept that',
                )
        with self._lock:
            self._selections.setdefault(name, selection)
            return self._selections[name]

    def metadata(self, release: Release) -> CoreMetadata:
        return self.fetcher.metadata(release.wheel).result()

    def prefetch(self, wanted: Iterable[tuple[NormalizedName, SpecifierSet]]) -> None:
        """Start fetching what the resolver will likely ask for next, ahead of it.

        For each wanted project: its page; when the page is in, the metadata of the
        release the resolver will most likely try; when that is in, the same for its
        dependencies (once per project).  The resolver's own requests then mostly
        find their answers already fetched.
        """
        for name, specifier in wanted:
            if self.fetcher.closed:
                return
            with self._lock:
                if name in self._speculated:
                    continue
                self._speculated.add(name)
            page = self.fetcher.page(name)
            page.add_done_callback(functools.partial(self._prefetch_best, name, specifier))

    def _prefetch_best(
        self, name: NormalizedName, specifier: SpecifierSet, _page: Future[list[DistFile]]
    ) -> None:
        try:
            selection = self.selection(name)
        except Exception:  # the resolver meets and reports the error itself
            return
        release = self.choose(name, specifier, selection) if self.choose else None
        if release is None:
            release = next((r for r in selection.releases if specifier.contains(r.version)), None)
        if release is not None and not self.fetcher.closed:
            future = self.fetcher.metadata(release.wheel)
            future.add_done_callback(self._prefetch_dependencies)

    def _prefetch_dependencies(self, future: Future[CoreMetadata]) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        env = {**self.target.marker_environment(), "extra": ""}
        wanted = [
            (canonicalize_name(r.name), r.specifier)
            for r in future.result().requires_dist
            if r.marker is None or r.marker.evaluate(env)
        ]
        self.prefetch(wanted)
