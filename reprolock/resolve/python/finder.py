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
from typing import Any, Generic, TypeVar

from packaging.specifiers import SpecifierSet
from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)

from reprolock.resolve.python.index import DistFile, PythonIndex, SdistMetadata
from reprolock.resolve.python.metadata import (
    CoreMetadata,
    applying,
    check_identity,
    parse_metadata,
)
from reprolock.resolve.python.select import (
    CoreSelection,
    Refusal,
    Release,
    Selection,
    select_core,
    selection_for,
)
from reprolock.resolve.python.target import PythonTarget
from reprolock.resolve.python.urgency import awaited

T = TypeVar("T")


class _Task(Generic[T]):
    """One piece of work, run once: by a pool worker when it gets to it, or, sooner, by a
    thread that needs its result and finds it not started (see `Fetcher.now`)."""

    def __init__(self, work: Callable[[], T]) -> None:
        self.work = work
        self.future: Future[T] = Future()
        self._claimed = False
        self._lock = threading.Lock()

    def claim(self) -> bool:
        with self._lock:
            if self._claimed:
                return False
            self._claimed = True
            return True

    def run(self) -> None:
        """Run the work into the future (the caller has claimed the task)."""
        if not self.future.set_running_or_notify_cancel():
            return
        try:
            result = self.work()
        except BaseException as exc:
            self.future.set_exception(exc)
        else:
            self.future.set_result(result)

    def run_unless_claimed(self) -> None:
        if self.claim():
            self.run()


class Fetcher:
    """Shared by every target of one lock: each page and metadata file is fetched once.

    Fetches run in a bounded thread pool, most of them speculative (`Finder.prefetch`).
    When the resolver needs an answer whose fetch has not started yet, it does not queue
    behind the speculation: it runs that fetch itself (`now`).
    """

    def __init__(self, index: PythonIndex, *, workers: int = 16) -> None:
        self.index = index
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="reprolock-fetch")
        self._pages: dict[NormalizedName, _Task[list[DistFile]]] = {}
        self._metadata: dict[str, _Task[CoreMetadata]] = {}
        self._cores: dict[tuple[object, ...], _Task[CoreSelection]] = {}
        self._lock = threading.Lock()
        self.closed = False

    def page(self, name: NormalizedName) -> Future[list[DistFile]]:
        return self._page(name).future

    def page_files(self, name: NormalizedName) -> list[DistFile]:
        """The files of ``name``'s page, fetched now unless a worker already is."""
        return self.now(self._page(name))

    def _page(self, name: NormalizedName) -> _Task[list[DistFile]]:
        with self._lock:
            task = self._pages.get(name)
            if task is None:
                task = self._pages[name] = self._submit(
                    lambda: list(self.index.project_files(name))
                )
            return task

    def metadata(self, file: DistFile) -> Future[CoreMetadata]:
        return self._metadata_task(file).future

    def metadata_now(self, file: DistFile) -> CoreMetadata:
        """The metadata of ``file``, fetched now unless a worker already is."""
        return self.now(self._metadata_task(file))

    def _metadata_task(self, file: DistFile) -> _Task[CoreMetadata]:
        with self._lock:
            task = self._metadata.get(file.url)
            if task is None:
                task = self._metadata[file.url] = self._submit(lambda: self._read_metadata(file))
            return task

    def _read_metadata(self, file: DistFile) -> CoreMetadata:
        return check_identity(parse_metadata(self.index.metadata(file)), file.filename, file.index)

    def core_selection(
        self, key: tuple[object, ...], compute: Callable[[], CoreSelection]
    ) -> CoreSelection:
        """The core selection named ``key``, computed once (by whoever asks first): targets
        that share a tag set share it."""
        with self._lock:
            task = self._cores.get(key)
            if task is None:
                task = self._cores[key] = _Task(compute)
        return self.now(task)

    @staticmethod
    def now(task: _Task[T]) -> T:
        """The task's result: run here when no one has started it (marked awaited), else
        waited for."""
        if task.claim():
            with awaited():
                task.run()
        return task.future.result()

    def _submit(self, work: Callable[[], T]) -> _Task[T]:
        task = _Task(work)
        try:
            self.pool.submit(task.run_unless_claimed)
        except RuntimeError:  # shut down: a late speculative request, not worth running
            if task.claim():
                task.future.cancel()
        return task

    def close(self) -> None:
        self.closed = True  # speculative callbacks still running stop submitting work
        self.pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            tasks: list[_Task[Any]] = [*self._pages.values(), *self._metadata.values()]
        for task in tasks:  # never started: nobody will wait for them now
            if task.claim():
                task.future.cancel()


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
        sdists: SdistMetadata | None = None,
        may_build: Callable[[NormalizedName], bool] | None = None,
    ) -> None:
        """``sdists`` gives the metadata of releases that are built from their sdist; a
        project is offered such releases only when ``may_build`` says it may be built."""
        self.sdists = sdists
        self.may_build = may_build if sdists is not None else None
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
        files = self.fetcher.page_files(name)
        unhashed_ok = name in self.allow_unhashed
        if not unhashed_ok:
            hashed = [f for f in files if f.sha256 or not f.is_wheel]
            unhashed = [f for f in files if not f.sha256 and f.is_wheel]
        else:
            hashed, unhashed = files, []
        build = self.may_build is not None and self.may_build(name)
        core = self.fetcher.core_selection(
            (name, self.target.selection_key, self.exclude_newer, unhashed_ok, build),
            lambda: select_core(
                name, hashed, self.target, exclude_newer=self.exclude_newer, build=build
            ),
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
                    Refusal.UNHASHED,
                )
        with self._lock:
            self._selections.setdefault(name, selection)
            return self._selections[name]

    def metadata(self, release: Release) -> CoreMetadata:
        if release.is_sdist:
            if self.sdists is None:  # pragma: no cover - only offered with an sdist source
                raise RuntimeError(f"{release.wheel.filename}: no way to read an sdist")
            file = release.wheel
            data = self.sdists.metadata(file, self.target)
            return check_identity(parse_metadata(data), file.filename, file.index)
        return self.fetcher.metadata_now(release.wheel)

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
        if release is not None and not release.is_sdist and not self.fetcher.closed:
            # (an sdist's metadata is built, not fetched: only when the resolver asks)
            future = self.fetcher.metadata(release.wheel)
            future.add_done_callback(self._prefetch_dependencies)

    def _prefetch_dependencies(self, future: Future[CoreMetadata]) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        env = self.target.marker_environment()
        wanted = [
            (canonicalize_name(r.name), r.specifier) for r in applying(future.result(), env, None)
        ]
        self.prefetch(wanted)
