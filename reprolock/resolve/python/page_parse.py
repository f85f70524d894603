"""Index pages: fetched and parsed into the files some target can use, on another core.

A cold lock is bound by one interpreter's lock: the resolver, HTTP and page parsing take
turns on one core while the second idles.  Pages are the bulk of what a cold lock reads
(tens of megabytes of JSON, most of it files for other platforms), and fetching and parsing
one needs only its URL, the network settings and the targets' tags, so `PageWorkers` has
worker processes do it: a worker fetches a page never fetched before, caches it with its
summary (`page_summary`) as this process would, and answers with the kept files and the
other wheels' names, which never pass through this interpreter as bytes.  A large page
fetched here (a revalidation that changed) is parsed there too.  Two workers also fetch
the metadata of wheels (caching it as this process would).  Small pages, any page or metadata
while the workers start, and everything when no worker can be had, are done here.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import gc
import json
import os
import select as io_select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NoReturn

from packaging.utils import canonicalize_name

from reprolock import errors, limits
from reprolock.errors import ReprolockError
from reprolock.net.config import NetConfig
from reprolock.net.startup import inherited_descriptors, open_descriptors
from reprolock.resolve.python import page_summary, pages, select
from reprolock.resolve.python.index import DistFile
from reprolock.resolve.python.target import WheelFilter
from reprolock.resolve.python.urgency import is_awaited

WORKER_BYTES = 256 * 1024  # smaller pages parse faster here than they travel
# Up to two workers where there are two cores: while the resolver waits for pages this
# process leaves its core idle, and one worker spent it parsing the big pages (grpcio,
# wrapt) one after another (measured on 2 cores: cold kitchen sink 3.5 -> 3.1 s, science
# 1.5 -> 1.4 s).  Both start at once for a spec of `LARGE_SPEC` requirements or more; for
# a smaller one, one, and the second only when `SPREAD_BUSY` requests wait at the first: a
# second worker cost a small lock (jax, 21 packages) 0.17 s of CPU and 50-100 ms, and one
# started halfway through the torch stack's lock (65 packages) slowed it by as much.
WORKERS = min(2, max(1, os.cpu_count() or 1))
LARGE_SPEC = 24
SPREAD_BUSY = 24
# Metadata is fetched by the workers only while this many run: one worker is kept busy by
# the pages alone, and this process then has the time for metadata (6 alternating cold
# locks, one worker: torch 0.89 s with the metadata there, 0.71 s here; science 0.96 and
# 0.81 s; the kitchen sink, two workers from the start: 2.21 s here, 2.00 s there).
METADATA_WORKERS = 2
# A page the resolver awaits is fetched here rather than by a worker with this many
# requests in flight: it would share that worker's interpreter with all of them (the torch
# stack waited 230 ms for typing-extensions' small page behind the nvidia-* pages).
AWAITED_BUSY = 4


def workers_for(requirements: int) -> int:
    """How many workers to start at once for a spec of ``requirements`` requirements."""
    return WORKERS if requirements >= LARGE_SPEC else 1


def parse(
    body: bytes,
    content_type: str,
    *,
    page_url: str,
    index: str,
    name: str,
    wheel_filter: WheelFilter | None,
) -> tuple[list[DistFile], list[str]]:
    """The files of a page that some target can use (all files without a filter), less
    dominated sdists, and the names of the other wheels; `pages.PageError` for a
    malformed page."""
    others: list[str] = []
    other = others.append

    def keep(filename: str) -> bool:
        if filename.endswith(".whl"):
            if wheel_filter is None or wheel_filter(filename):
                return True
            other(filename)  # wheels no target can use: their names suffice
        elif filename.endswith((".tar.gz", ".zip")):
            return True  # sdists: a release without a wheel for the target may be built
        return False

    files = pages.parse_page(body, content_type, page_url=page_url, index=index, keep=keep)
    if wheel_filter is not None:
        files = select.without_dominated_sdists(
            canonicalize_name(name), files, wheel_filter.everywhere
        )
    return files, others


def row_of(f: DistFile) -> list[object]:
    """A file as a row of a worker's messages: its fields in order, but the index (which
    the asker knows)."""
    return [
        f.filename,
        f.url,
        f.sha256,
        f.requires_python,
        f.yanked,
        f.upload_time_text,
        f.size,
        f.metadata,
    ]


def file_of(row: Sequence[Any], index: str) -> DistFile:
    """`row_of` read back, listed on ``index``.  Rows are not checked again: they were made
    by the other process of the pair, with this code, from what it checked, and sent over a
    pipe only the two share (a cached summary, which anything could have written, is checked
    on reading)."""
    return DistFile(
        filename=row[0],
        url=row[1],
        index=index,
        sha256=row[2],
        requires_python=row[3],
        yanked=row[4],
        upload_time_text=row[5],
        size=row[6],
        metadata=row[7],
    )


def dump_rows(files: Sequence[DistFile], others: Sequence[str], summary: bytes | None) -> bytes:
    """A worker's answer: the files as rows (`row_of`) and the others' names, then the page
    summary to cache (empty: none)."""
    named = select.OtherFiles.of(others)
    head = page_summary.dumps([[row_of(f) for f in files], named.text, sorted(named.versions)])
    return _LENGTH.pack(len(head)) + head + (summary or b"")


def load_rows(payload: bytes, index: str) -> tuple[list[DistFile], select.OtherFiles, bytes | None]:
    """`dump_rows` read back (`file_of`)."""
    (size,) = _LENGTH.unpack_from(payload)
    rows, text, versions = pages.decode_json(payload[_LENGTH.size : _LENGTH.size + size])
    summary = payload[_LENGTH.size + size :] or None
    files = [file_of(r, index) for r in rows]
    return files, select.OtherFiles(text, frozenset(versions)), summary


# -- the worker process -----------------------------------------------------------------
# Messages are framed by their length, over the worker's stdin and stdout (only this
# process and the child it started speak on them).  The first is the setup (JSON: the
# targets' tag sets, and how to fetch: network settings, cache folder, limits).  Then each
# request is a JSON header with an id — {"op": "parse", content type, page URL, index,
# name} followed by the page's body, or {"op": "fetch", page URL, index URL, name} — and
# is answered, in any order, by a JSON header {"id", "kind", "bytes"} and a payload:
# kind "r" (`dump_rows`: the files; with the summary to cache for a parse, a fetch has
# cached it), "e" (a PageError's text), "x" (a ReprolockError as JSON) or "f" (the
# worker failed: the caller does the work itself).
_LENGTH = struct.Struct(">Q")
_HEADER_CAP = 1 << 20
_WORKER_THREADS = 8  # fetches in flight per worker (each mostly waits on the network)
READY = -1  # the id of the answer a worker sends once set up


def _write(stream: IO[bytes], *payloads: bytes) -> None:
    for payload in payloads:
        stream.write(_LENGTH.pack(len(payload)))
        stream.write(payload)
    stream.flush()


def _send(fd: int, payloads: Sequence[bytes], deadline: float) -> None:
    """`_write` to a worker's input (a non-blocking pipe) by ``deadline`` (time.monotonic):
    a worker that stops reading makes this raise TimeoutError, not hang."""
    poller = io_select.poll()
    poller.register(fd, io_select.POLLOUT)
    for payload in payloads:
        for piece in (_LENGTH.pack(len(payload)), payload):
            view = memoryview(piece)
            while view:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("the page worker takes no more input")
                if not poller.poll(remaining * 1000):
                    continue
                try:
                    view = view[os.write(fd, view[: 1 << 20]) :]
                except BlockingIOError:
                    continue


def _read(stream: IO[bytes], cap: int) -> bytes:
    head = stream.read(_LENGTH.size)
    if len(head) != _LENGTH.size:
        raise EOFError("the page worker closed its pipe")
    (size,) = _LENGTH.unpack(head)
    if size > cap:
        raise ValueError(f"a {size}-byte message from the page worker")
    payload = stream.read(size)
    if len(payload) != size:
        raise EOFError("the page worker closed its pipe")
    return payload


@dataclass(frozen=True, slots=True)
class FetchSetup:
    """What a worker needs to fetch pages as this process would: the network settings,
    the cache folder (shared: its writes are atomic) and the limits in force."""

    net: NetConfig
    cache_root: Path | None

    def message(self) -> dict[str, object]:
        return {
            "net": dataclasses.asdict(self.net),
            "cache": None if self.cache_root is None else str(self.cache_root),
            "limits": dataclasses.asdict(limits.current()),
        }


def _setup_message(wheel_filter: WheelFilter | None, fetch: FetchSetup | None) -> bytes:
    tags = None if wheel_filter is None else [sorted(t) for t in wheel_filter.tag_sets]
    return json.dumps({"tags": tags, "fetch": None if fetch is None else fetch.message()}).encode()


def _filter_of(tags: object) -> WheelFilter | None:
    if tags is None:
        return None
    assert isinstance(tags, list)
    return WheelFilter.of_tag_sets(frozenset((p, a, q) for p, a, q in sets) for sets in tags)


class _Fetching:
    """In the worker: pages fetched by an `HttpIndex` per index, parsed here."""

    def __init__(self, setup: dict[str, Any], wheel_filter: WheelFilter | None) -> None:
        from reprolock.net.cache import Cache  # noqa: PLC0415 - only a fetching worker
        from reprolock.net.session import new_session  # noqa: PLC0415
        from reprolock.resolve.python import http_index  # noqa: PLC0415, F401 - now, not later

        limits.install(limits.Limits(**setup["limits"]))
        self.session = new_session(NetConfig(**setup["net"]))
        self.cache = Cache(None if setup["cache"] is None else Path(setup["cache"]))
        self.wheel_filter = wheel_filter
        self._indexes: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _index(self, index_url: str) -> Any:
        from reprolock.resolve.python.http_index import HttpIndex  # noqa: PLC0415 - a cycle

        with self._lock:
            index = self._indexes.get(index_url)
            if index is None:
                index = self._indexes[index_url] = HttpIndex(
                    index_url, self.session, self.cache, wheel_filter=self.wheel_filter, workers=0
                )
        return index

    def fetch(
        self, index_url: str, page_url: str, name: str
    ) -> tuple[list[DistFile], Sequence[str], int]:
        """The page's files and others' names (the page cached, with its summary when it
        can have one), and the bytes received; `ReprolockError` as fetching it in the
        caller would raise."""
        files, others, _summary, received = self._index(index_url).fetch_page(page_url, name, None)
        return files, others, received

    def metadata(self, index_url: str, file: DistFile) -> bytes:
        """The core metadata of ``file`` as the caller's index would fetch (and cache) it;
        `ReprolockError` as it would raise."""
        data: bytes = self._index(index_url).metadata(file)
        return data


def serve(requests: IO[bytes], answers: IO[bytes], *, preload: bool = False) -> None:
    """The worker's loop: read requests until the input ends, answer each on a thread
    (with ``preload``, the fetching stack is imported before the setup is read)."""
    cap = 1 << 40
    if preload:
        from reprolock.resolve.python import http_index  # noqa: PLC0415, F401 - while waiting
    try:
        setup = json.loads(_read(requests, _HEADER_CAP * 16))
    except EOFError:  # booted, never taken
        return
    wheel_filter = _filter_of(setup["tags"])
    fetching = None if setup["fetch"] is None else _Fetching(setup["fetch"], wheel_filter)
    # A worker's life is pages: millions of short-lived objects without cycles.  What is
    # alive now (modules, the session) is kept out of collections, which start every
    # 20,000 allocations rather than 700 (as `api.heap.fewer_collections` does for a lock).
    gc.freeze()
    gc.set_threshold(20_000, *gc.get_threshold()[1:])
    writing = threading.Lock()
    with writing:  # set up (imports done): the caller may send work now
        _write(answers, json.dumps({"id": READY, "kind": "ready", "bytes": 0}).encode(), b"")

    def answer(ident: int, kind: str, payload: bytes = b"", received: int = 0) -> None:
        head = json.dumps({"id": ident, "kind": kind, "bytes": received}).encode()
        with writing:
            _write(answers, head, payload)

    def parse_one(ident: int, request: dict[str, Any], body: bytes) -> None:
        try:
            files, others = parse(
                body,
                request["content_type"],
                page_url=request["page_url"],
                index=request["index"],
                name=request["name"],
                wheel_filter=wheel_filter,
            )
        except pages.PageError as exc:
            answer(ident, "e", str(exc).encode("utf-8", "replace"))
            return
        named = select.OtherFiles.of(others)  # its version texts worked out once, for both
        summary = page_summary.dump_summary(files, named, page_url=request["page_url"])
        answer(ident, "r", dump_rows(files, named, summary))

    def fetched(ident: int, work: Callable[[_Fetching], tuple[bytes, int]]) -> None:
        """Answer ``ident`` with what ``work`` fetched (a payload and the bytes received),
        the `ReprolockError` it raised, or "f" (the caller does it itself)."""
        if fetching is None:  # not set up to fetch: the caller fetches it itself
            answer(ident, "f")
            return
        try:
            payload, received = work(fetching)
        except ReprolockError as exc:
            error = {"type": type(exc).__name__, "message": exc.message, "hint": exc.hint}
            answer(ident, "x", json.dumps(error).encode())
            return
        except Exception:  # a bug or an odd failure: the caller fetches it itself
            answer(ident, "f")
            return
        answer(ident, "r", payload, received)

    def fetch_one(ident: int, request: dict[str, Any]) -> None:
        def work(on: _Fetching) -> tuple[bytes, int]:
            files, others, received = on.fetch(
                request["index_url"], request["page_url"], request["name"]
            )
            return dump_rows(files, others, None), received

        fetched(ident, work)

    def metadata_one(ident: int, request: dict[str, Any]) -> None:
        def work(on: _Fetching) -> tuple[bytes, int]:
            data = on.metadata(request["index_url"], file_of(request["file"], request["index"]))
            return data, len(data)

        fetched(ident, work)

    pool = ThreadPoolExecutor(max_workers=_WORKER_THREADS)
    try:
        while True:
            try:
                request = json.loads(_read(requests, _HEADER_CAP))
            except EOFError:
                break
            ident = int(request["id"])
            if request["op"] == "parse":
                pool.submit(parse_one, ident, request, _read(requests, cap))
            elif request["op"] == "metadata":
                pool.submit(metadata_one, ident, request)
            else:
                pool.submit(fetch_one, ident, request)
    finally:
        # The input ended: nobody reads answers any more.  Work not started is dropped, and
        # the caller (which waits for this process to exit) does not wait for what runs: a
        # worker's process exits when this returns (a cache write cut short leaves only a
        # temporary file, which a later run sweeps away).
        pool.shutdown(wait=False, cancel_futures=True)


# -- in the caller ----------------------------------------------------------------------
class _Forked:
    """A worker forked from this process (`boot`): what `_Worker` uses of a
    `subprocess.Popen` — its pipes, `wait`, `kill` and `returncode`."""

    def __init__(self, pid: int, stdin: IO[bytes], stdout: IO[bytes]) -> None:
        self.pid = pid
        self.stdin: IO[bytes] | None = stdin
        self.stdout: IO[bytes] | None = stdout
        self.returncode: int | None = None
        self._pidfd: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere
                self.returncode = -1
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        if self.returncode is not None and self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """The exit code; `subprocess.TimeoutExpired` when it runs ``timeout`` seconds on."""
        deadline = None if timeout is None else time.monotonic() + timeout
        exited = self._exit_event()
        pause = 0.0005
        while (code := self.poll()) is None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(f"page worker {self.pid}", timeout or 0.0)
            if exited is not None:  # woken when it exits
                exited.poll(None if left is None else left * 1000)
            else:
                time.sleep(pause if left is None else min(pause, left))
                pause = min(pause * 2, 0.05)
        return code

    def _exit_event(self) -> io_select.poll | None:
        """A poll object that wakes when the worker exits (a pidfd, Linux 5.3 and later), or
        None (then `wait` polls its status)."""
        if self._pidfd is None:
            try:
                self._pidfd = os.pidfd_open(self.pid)
            except (AttributeError, OSError):
                return None
        poller = io_select.poll()
        poller.register(self._pidfd, io_select.POLLIN)
        return poller

    def kill(self) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


_Process = subprocess.Popen[bytes] | _Forked
_BOOTED: list[_Process] = []  # started by `boot`, not yet taken by a pool
_BOOTING = threading.Lock()


def _spawn(*, preload: bool) -> subprocess.Popen[bytes]:
    """A worker process: the same interpreter with the same flags (-I, -E, -S...), so the
    same reprolock; with ``preload`` it imports the fetching stack before its setup comes."""
    flags_of: Callable[[], list[str]] = getattr(subprocess, "_args_from_interpreter_flags", list)
    return subprocess.Popen(
        [
            sys.executable,
            *flags_of(),
            "-m",
            "reprolock.resolve.python.page_parse",
            *(["--preload"] if preload else []),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


def _may_fork() -> bool:
    """Whether a worker may be forked from this process rather than started afresh: on
    Linux, while this process runs one thread and has nothing open but its standard
    streams and what it was started with (a fork copies only the calling thread, and every
    open file: a worker could close a file some object here owns only by closing it under
    that object, and keeping it open would keep, say, a lock held on it)."""
    if sys.platform != "linux" or not hasattr(os, "fork") or threading.active_count() != 1:
        return False
    found = open_descriptors()
    return found is not None and found <= {0, 1, 2} | inherited_descriptors()


def _fork(count: int) -> list[_Process]:
    """``count`` workers forked from this process, the fetching stack imported first (here,
    where it is needed anyway): they are set up at once instead of each starting an
    interpreter and importing it (~0.1 s of CPU each, and as long before the first page)."""
    from reprolock.resolve.python import http_index  # noqa: PLC0415, F401 - shared by the forks

    made: list[_Process] = []
    for _ in range(count):
        requests_in, requests_out = os.pipe()
        answers_in, answers_out = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            for fd in (requests_in, requests_out, answers_in, answers_out):
                os.close(fd)
            break
        if pid == 0:  # the worker: never returns
            _forked_worker(requests_in, answers_out)
        os.close(requests_in)
        os.close(answers_out)
        made.append(_Forked(pid, os.fdopen(requests_out, "wb"), os.fdopen(answers_in, "rb")))
    return made


def _forked_worker(requests: int, answers: int) -> NoReturn:
    """The forked worker's life: its standard streams on the null device, every descriptor
    but its two pipes closed (the other workers' pipes would keep their input from ending),
    the inherited heap frozen out of collections, then `serve` until its input ends."""
    code = 1
    try:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        for fd in sorted((open_descriptors() or frozenset()) - {0, 1, 2, requests, answers}):
            with contextlib.suppress(OSError):  # (the listing's own, closed by now)
                os.close(fd)
        gc.freeze()
        serve(os.fdopen(requests, "rb"), os.fdopen(answers, "wb"))
        code = 0
    finally:
        os._exit(code)


def boot(count: int = 1) -> None:
    """Start ``count`` workers now, before any page is asked for (a lock whose cache has no
    page yet will want them): forked when this process may (`_may_fork`), else started as
    new interpreters that import while this process does; the first `PageWorkers` takes
    them.  Those never taken are told to exit when this process does.  A worker that
    cannot be started is left to `PageWorkers` to try again (or do without)."""
    with _BOOTING:
        if _BOOTED:
            return
        if _may_fork():
            _BOOTED.extend(_fork(count))
        else:
            for _ in range(count):
                try:
                    _BOOTED.append(_spawn(preload=True))
                except OSError:
                    break
        if _BOOTED:
            atexit.register(_release_booted)


def _booted() -> int:
    with _BOOTING:
        return len(_BOOTED)


def _adopt() -> _Process | None:
    with _BOOTING:
        return _BOOTED.pop() if _BOOTED else None


def _release_booted() -> None:
    """Close the input of booted workers no pool took: they exit (not waited for)."""
    with _BOOTING:
        left, _BOOTED[:] = list(_BOOTED), []
    for process in left:
        with contextlib.suppress(OSError):
            if process.stdin is not None:
                process.stdin.close()


@dataclass(frozen=True, slots=True)
class Answer:
    kind: str  # see the protocol above
    payload: bytes
    received: int


class _Worker:
    """One worker process, started on first use, asked several things at once: a reader
    thread hands each answer to the request it belongs to."""

    def __init__(self, setup: bytes) -> None:
        self.setup = setup
        self.process: _Process | None = None
        self._pending: dict[int, Future[Answer]] = {}
        self._next = 0
        self._lock = threading.Lock()  # the pending requests, the process
        self._sending = threading.Lock()  # one message at a time on the worker's input
        self._starting = threading.Lock()
        self.dead = False
        self.ready = threading.Event()  # set up: imports done, work is answered at once

    @property
    def busy(self) -> int:
        with self._lock:
            return len(self._pending)

    @property
    def started(self) -> bool:
        with self._lock:
            return self.process is not None or self.dead

    def start(self) -> None:
        """Start the process (it boots while this one goes on; one `boot` started is taken
        first); OSError when it cannot."""
        with self._starting:
            if self.process is not None or self.dead:
                return
            process = _adopt() or _spawn(preload=False)
            assert process.stdin is not None and process.stdout is not None
            os.set_blocking(process.stdin.fileno(), False)  # writes are bounded in time
            with self._sending:
                _send(process.stdin.fileno(), [self.setup], time.monotonic() + answer_seconds())
            with self._lock:
                self.process = process
            reader = threading.Thread(
                target=self._read_answers, args=(process.stdout,), daemon=True
            )
            reader.start()

    def ask(
        self, request: Mapping[str, object], body: bytes | None = None, *, timeout: float
    ) -> Answer:
        """The worker's answer to one request; OSError, EOFError or ValueError when it
        cannot be started or asked, or dies first; TimeoutError (an OSError) when it has
        not answered within ``timeout`` seconds."""
        future: Future[Answer] = Future()
        self.start()
        with self._lock:
            process = self.process
            if self.dead or process is None or process.stdin is None:
                raise EOFError("the page worker has died")
            ident = self._next
            self._next += 1
            self._pending[ident] = future
        head = json.dumps({**request, "id": ident}).encode()
        deadline = time.monotonic() + timeout
        try:
            with self._sending:  # (not under the lock: the reader takes it for each answer)
                _send(process.stdin.fileno(), [head, *(() if body is None else (body,))], deadline)
        except (OSError, ValueError):
            with self._lock:
                self._pending.pop(ident, None)
            raise
        return future.result(timeout=max(0.0, deadline - time.monotonic()))

    def _read_answers(self, answers: IO[bytes]) -> None:
        error: Exception = EOFError("the page worker closed its pipe")
        try:
            while True:
                head = json.loads(_read(answers, _HEADER_CAP))
                payload = _read(answers, 1 << 40)
                if head["id"] == READY:
                    self.ready.set()
                    continue
                with self._lock:
                    future = self._pending.pop(int(head["id"]), None)
                if future is not None:
                    answer = Answer(str(head["kind"]), payload, int(head.get("bytes", 0)))
                    future.set_result(answer)
        except (OSError, EOFError, ValueError, KeyError, TypeError) as exc:
            error = exc if isinstance(exc, OSError | EOFError | ValueError) else ValueError(exc)
        with self._lock:
            self.dead = True
            pending, self._pending = self._pending, {}
        for future in pending.values():
            future.set_exception(error)

    def stop(self, *, wait: bool = True) -> None:
        """End the worker: close its input (it exits), then, with ``wait``, wait for it
        (killed after 5 s) and close its output."""
        with self._lock:
            process = self.process
            self.dead = True
            if wait:
                self.process = None
        if process is None:
            return
        with contextlib.suppress(OSError):
            if process.stdin is not None:
                process.stdin.close()  # the worker's input ends: it returns
        if not wait:
            return
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            with contextlib.suppress(OSError):
                process.stdout.close()


def answer_seconds() -> float:
    """How long a worker's answer is waited for: what fetching the largest page allowed at
    the slowest rate allowed may take here, and a minute to parse it.  A worker past that
    is stopped and the work done here, as if it had died."""
    caps = limits.current()
    return caps.request_seconds + caps.page_bytes / caps.min_bytes_per_second + 60.0


class PageWorkers:
    """Worker processes that fetch pages and parse them, several requests in flight each.

    `fetch` has a worker fetch a page, cache it with its summary and answer with the kept
    files: the page's bytes never enter this interpreter (a cold lock reads tens of
    megabytes of JSON, and this interpreter's time is the resolver's).  `parse` has one
    parse a large page fetched here.  Both return None when the work is better done here:
    a small page, no fetch setup, no worker set up yet (they are not waited for), or none
    could be started or one died (workers are then not tried again).  A malformed page
    raises `pages.PageError`, a failed fetch the `ReprolockError` fetching it here would.
    """

    def __init__(
        self,
        wheel_filter: WheelFilter | None,
        *,
        size: int = WORKERS,
        first: int = 1,
        fetch: FetchSetup | None = None,
    ) -> None:
        self.wheel_filter = wheel_filter
        self.size = size
        self.first = first  # started by `prepare` (or as many as booted); the rest on demand
        self.fetch_setup = fetch
        self._setup: bytes | None = None
        self._workers: list[_Worker] = []
        self._failed = False
        self._lock = threading.Lock()
        self.fetched = 0  # pages fetched by a worker
        self.metadata_fetched = 0  # and metadata files
        self.received = 0  # and the bytes they received

    def _worker(self) -> _Worker | None:
        """The least busy worker that is set up, or None (none is yet: the work is done
        here rather than waiting for one to start)."""
        with self._lock:
            if self._failed:
                return None
            ready = [w for w in self._workers if w.ready.is_set()]
            return min(ready, key=lambda w: w.busy) if ready else None

    def _fail(self) -> None:
        with self._lock:
            self._failed = True
            workers, self._workers = self._workers, []
        for worker in workers:
            worker.stop(wait=False)  # every input closed first: they exit side by side
        for worker in workers:
            worker.stop()

    def prepare(self) -> None:
        """Start the first workers now, so that they have booted when the first page comes
        (called before the first page is fetched)."""
        with self._lock:
            if self._failed or self.size <= 0:
                return
            if self._setup is None:
                self._setup = _setup_message(self.wheel_filter, self.fetch_setup)
            while len(self._workers) < self.size:
                self._workers.append(_Worker(self._setup))
            workers = self._workers[: max(self.first, _booted())]
        try:
            for worker in workers:
                worker.start()
        except (OSError, ValueError):
            self._fail()

    def _spread(self, least_busy: _Worker) -> None:
        """Start another worker when the least busy one set up has `SPREAD_BUSY` requests
        waiting."""
        if least_busy.busy < SPREAD_BUSY:
            return
        with self._lock:
            if self._failed:
                return
            idle = next((w for w in self._workers if not w.started), None)
        if idle is None:
            return
        try:
            idle.start()
        except (OSError, ValueError):  # as when the first cannot start: pages are done here
            self._fail()

    def wait_ready(self, timeout: float) -> bool:
        """Whether every worker started has set up within ``timeout`` seconds (for callers
        that want the work done there; `prepare` first)."""
        with self._lock:
            workers = [w for w in self._workers if w.started]
        return bool(workers) and all(w.ready.wait(timeout) for w in workers)

    def _ask(
        self, request: Mapping[str, object], body: bytes | None = None, *, awaited: bool = False
    ) -> Answer | None:
        worker = self._worker()
        if worker is None:
            return None
        self._spread(worker)
        if awaited and worker.busy >= AWAITED_BUSY:
            return None
        try:
            return worker.ask(request, body, timeout=answer_seconds())
        except (OSError, EOFError, ValueError):  # (a worker that hangs too: TimeoutError)
            self._fail()
            return None

    def fetch(
        self, *, index_url: str, page_url: str, name: str, index: str
    ) -> tuple[list[DistFile], select.OtherFiles, int] | None:
        """A worker's fetch of the page: its files (listed on ``index``), the others' names
        and the bytes received, the page cached with its summary; None when it is fetched
        here."""
        if self.fetch_setup is None:
            return None
        self.prepare()
        request = {"op": "fetch", "index_url": index_url, "page_url": page_url, "name": name}
        answer = self._fetched(request)
        if answer is None:
            return None
        with self._lock:
            self.fetched += 1
            self.received += answer.received
        files, others, _summary = load_rows(answer.payload, index)
        return files, others, answer.received

    def metadata(self, *, index_url: str, file: DistFile) -> bytes | None:
        """A worker's fetch of ``file``'s core metadata (cached there, as here); None when it
        is fetched here.  A wheel's metadata takes two or three requests and a zip
        directory read when the index does not serve it on its own (PEP 658): done here,
        that was a third of this interpreter's time in a cold lock, which the resolver and
        the selection of releases wait on."""
        if self.fetch_setup is None:
            return None
        with self._lock:  # (none is started for it: pages start them)
            started = sum(w.started for w in self._workers)
        if started < METADATA_WORKERS:
            return None
        request = {
            "op": "metadata",
            "index_url": index_url,
            "index": file.index,
            "file": row_of(file),
        }
        answer = self._fetched(request)
        if answer is None:
            return None
        with self._lock:
            self.metadata_fetched += 1
        return answer.payload

    def _fetched(self, request: Mapping[str, object]) -> Answer | None:
        """A worker's answer to a fetch ``request``; None when it is done here (no worker
        set up yet, or it gave up); the `ReprolockError` the worker met, raised here."""
        answer = self._ask(request, awaited=is_awaited())
        if answer is None or answer.kind == "f":
            return None
        if answer.kind == "x":
            raise _error_of(answer.payload)
        return answer

    def parse(
        self, body: bytes, content_type: str, *, page_url: str, index: str, name: str
    ) -> tuple[list[DistFile], select.OtherFiles, bytes | None] | None:
        """A large page parsed by a worker: its files, the others' names and its summary
        to cache (None: it has none); None when it is parsed here."""
        if len(body) < WORKER_BYTES:
            return None
        request = {
            "op": "parse",
            "content_type": content_type,
            "page_url": page_url,
            "index": index,
            "name": name,
        }
        self.prepare()
        answer = self._ask(request, body, awaited=is_awaited())  # while they start: here
        if answer is None:
            return None
        if answer.kind == "e":
            raise pages.PageError(answer.payload.decode("utf-8", "replace"))
        return load_rows(answer.payload, index) if answer.kind == "r" else None

    def close(self) -> None:
        self._fail()  # (closed: nothing more is asked of a worker)


def _error_of(payload: bytes) -> ReprolockError:
    """The error a worker's fetch met, as this process raises it."""
    try:
        fields = json.loads(payload)
        kind = getattr(errors, str(fields["type"]), None)
        message, hint = str(fields["message"]), fields.get("hint")
    except (ValueError, KeyError, TypeError):
        return errors.SourceError("a page worker sent a malformed error.", hint="Run it again.")
    if not (isinstance(kind, type) and issubclass(kind, ReprolockError)):
        kind = errors.SourceError
    error: ReprolockError = kind(message, hint=hint if isinstance(hint, str) else None)
    return error


if __name__ == "__main__":
    from reprolock.net.startup import without_charset_detection

    without_charset_detection()
    serve(sys.stdin.buffer, sys.stdout.buffer, preload="--preload" in sys.argv[1:])
    sys.stdout.flush()
    os._exit(0)  # every answer is written: tearing down the heap of pages only costs time
