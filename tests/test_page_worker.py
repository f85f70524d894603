"""Large index pages are parsed in a worker process, with the same result as here."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from packaging.utils import canonicalize_name

from reprolock.errors import SourceError
from reprolock.model import Platform, PythonVersion
from reprolock.net.cache import Cache
from reprolock.net.config import NetConfig
from reprolock.net.session import new_session
from reprolock.resolve.python import page_parse, page_summary, pages, urgency
from reprolock.resolve.python.http_index import HttpIndex
from reprolock.resolve.python.index import DistFile
from reprolock.resolve.python.select import OtherFiles
from reprolock.resolve.python.target import PythonTarget, wheel_filter

URL = "https://index.example/simple/pkg/"
INDEX = "https://index.example/simple"
TARGET = PythonTarget(python=PythonVersion.parse("3.11"), platform=Platform.parse("linux/amd64"))
PLATFORMS = ["manylinux_2_17_x86_64", "win_amd64", "macosx_11_0_arm64", "musllinux_1_1_x86_64"]


def _page(releases: int) -> bytes:
    files = []
    for n in range(releases):
        version = f"1.{n}"
        for platform in PLATFORMS:
            files.append(
                {
                    "filename": f"pkg-{version}-cp311-cp311-{platform}.whl",
                    "url": f"https://files.example/pkg-{version}-cp311-cp311-{platform}.whl",
                    "hashes": {"sha256": f"{n:064x}"},
                    "requires-python": ">=3.9",
                    "upload-time": "2024-01-01T00:00:00.000000Z",
                    "size": 1000 + n,
                    "yanked": n % 7 == 0,
                    "core-metadata": {"sha256": f"{n + 1:064x}"},
                }
            )
        files.append(
            {
                "filename": f"pkg-{version}.tar.gz",
                "url": f"https://files.example/pkg-{version}.tar.gz",
                "hashes": {"sha256": f"{n + 2:064x}"},
                "upload-time": "2024-01-01T00:00:00.000000Z",
            }
        )
    return json.dumps({"meta": {"api-version": "1.1"}, "name": "pkg", "files": files}).encode()


@pytest.fixture
def worker() -> Iterator[page_parse.PageWorkers]:
    found = page_parse.PageWorkers(wheel_filter([TARGET]))
    found.prepare()
    assert found.wait_ready(30)
    yield found
    found.close()


def _here(body: bytes) -> tuple[list[DistFile], list[str]]:
    return page_parse.parse(
        body,
        pages.JSON_TYPE,
        page_url=URL,
        index=INDEX,
        name="pkg",
        wheel_filter=wheel_filter([TARGET]),
    )


def _there(
    worker: page_parse.PageWorkers, body: bytes
) -> tuple[list[DistFile], OtherFiles, bytes | None] | None:
    return worker.parse(body, pages.JSON_TYPE, page_url=URL, index=INDEX, name="pkg")


def test_a_large_page_parsed_in_the_worker_reads_as_parsed_here(
    worker: page_parse.PageWorkers,
) -> None:
    body = _page(400)
    assert len(body) > page_parse.WORKER_BYTES
    parsed = _there(worker, body)
    assert parsed is not None
    files, others, summary = parsed
    assert summary is not None
    assert (files, list(others)) == _here(body)
    assert len(files) == 400 + 400  # the target's wheel and the sdist of each release
    assert len(others) == 3 * 400
    # the summary to cache reads back (checked) as the same files
    cached_files, cached_others = page_summary.load_summary(summary, page_url=URL, index=INDEX)
    assert (cached_files, cached_others.text, cached_others.versions) == (
        files,
        others.text,
        others.versions,
    )


def test_small_pages_are_parsed_here(worker: page_parse.PageWorkers) -> None:
    assert _there(worker, _page(3)) is None


def test_a_malformed_large_page_fails_as_it_would_here(worker: page_parse.PageWorkers) -> None:
    body = _page(400).replace(b'"hashes": {"sha256": "' + b"0" * 63, b'"hashes": {"sha256": "x', 1)
    with pytest.raises(pages.PageError, match="is not 64 hex digits"):
        _there(worker, body)
    with pytest.raises(pages.PageError, match="is not 64 hex digits"):
        page_parse.parse(
            body, pages.JSON_TYPE, page_url=URL, index=INDEX, name="pkg", wheel_filter=None
        )


def test_without_a_worker_the_page_is_parsed_here(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_processes(*args: object, **kwargs: object) -> object:
        raise OSError("no processes in this sandbox")

    monkeypatch.setattr(subprocess, "Popen", no_processes)
    worker = page_parse.PageWorkers(wheel_filter([TARGET]))
    body = _page(400)
    assert _there(worker, body) is None
    assert _there(worker, body) is None
    worker.close()


def test_while_workers_start_pages_are_parsed_here() -> None:
    worker = page_parse.PageWorkers(wheel_filter([TARGET]), size=1)
    assert _there(worker, _page(400)) is None  # started now, not waited for
    assert worker.wait_ready(30)
    assert _there(worker, _page(400)) is not None
    worker.close()


def test_a_worker_that_dies_is_not_asked_again() -> None:
    worker = page_parse.PageWorkers(wheel_filter([TARGET]), size=1)
    worker.prepare()
    assert worker.wait_ready(30)
    body = _page(400)
    assert _there(worker, body)
    (only,) = worker._workers
    process = only.process
    assert process is not None and process.pid != os.getpid()
    process.kill()
    process.wait()
    assert _there(worker, body) is None
    assert not worker._workers  # stopped, and not started again
    assert _there(worker, body) is None
    worker.close()


def test_pages_in_flight_at_once_all_come_back_to_their_askers() -> None:
    worker = page_parse.PageWorkers(wheel_filter([TARGET]), size=2, first=2)
    worker.prepare()
    assert worker.wait_ready(30)
    bodies = [_page(300 + n) for n in range(12)]
    with ThreadPoolExecutor(6) as pool:
        found = list(pool.map(lambda body: _there(worker, body), bodies))
    assert [(f[0], list(f[1])) if f else None for f in found] == [_here(b) for b in bodies]
    processes = [w.process for w in worker._workers]
    assert len(processes) == 2
    worker.close()
    assert all(p is not None and p.returncode == 0 for p in processes)  # reaped, exited


def test_prepared_workers_are_running_before_the_first_page_and_then_used() -> None:
    worker = page_parse.PageWorkers(wheel_filter([TARGET]), size=2, first=2)
    worker.prepare()
    processes = [w.process for w in worker._workers]
    assert len(processes) == 2 and all(p is not None and p.poll() is None for p in processes)
    worker.prepare()  # once only
    assert [w.process for w in worker._workers] == processes
    assert worker.wait_ready(30)
    assert _there(worker, _page(400)) is not None
    assert [w.process for w in worker._workers] == processes  # no third process
    worker.close()
    assert all(p is not None and p.returncode == 0 for p in processes)


def test_the_second_worker_starts_only_when_the_lock_shows_it_is_a_large_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bodies = [_page(300 + n) for n in range(12)]
    monkeypatch.setattr(page_parse, "SPREAD_BUSY", 10**6)
    small = page_parse.PageWorkers(wheel_filter([TARGET]), size=2)
    small.prepare()
    assert small.wait_ready(30)
    with ThreadPoolExecutor(6) as pool:
        assert all(pool.map(lambda body: _there(small, body), bodies))
    assert [w.started for w in small._workers] == [True, False]  # one was enough
    small.close()
    monkeypatch.setattr(page_parse, "SPREAD_BUSY", 0)  # a backlog from the first request on
    large = page_parse.PageWorkers(wheel_filter([TARGET]), size=2)
    large.prepare()
    assert [w.started for w in large._workers] == [True, False]
    assert large.wait_ready(30)
    assert _there(large, bodies[0]) is not None
    assert [w.started for w in large._workers] == [True, True]
    assert large.wait_ready(30)  # both set up: the next pages go to the less busy
    processes = [w.process for w in large._workers]
    large.close()
    assert all(p is not None and p.returncode == 0 for p in processes)


def test_a_page_the_resolver_awaits_is_done_here_when_the_worker_is_busy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker = page_parse.PageWorkers(wheel_filter([TARGET]), size=1)
    worker.prepare()
    assert worker.wait_ready(30)
    body = _page(300)
    monkeypatch.setattr(page_parse, "AWAITED_BUSY", 1)
    assert _there(worker, body) is not None  # not awaited: the worker does it
    with urgency.awaited():
        assert _there(worker, body) is not None  # awaited, the worker idle: still there
        worker._workers[0]._pending[-1] = Future()  # a request in flight at the worker
        assert _there(worker, body) is None  # awaited, the worker busy: done here
    assert _there(worker, body) is not None  # (queued behind the one in flight: answered)
    del worker._workers[0]._pending[-1]
    worker.close()


def test_a_closed_pool_prepares_nothing() -> None:
    worker = page_parse.PageWorkers(wheel_filter([TARGET]), size=2)
    worker.close()
    worker.prepare()
    assert worker._workers == []


METADATA = b"Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\nRequires-Dist: dep>=2\n"


class _Pages(BaseHTTPRequestHandler):
    """/simple/pkg/: a large page; /simple/broken/: 500; /files/pkg-*.metadata:
    `METADATA`; anything else: 404."""

    body = _page(400)
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)
        if self.path == "/simple/broken/":
            self.send_error(500)
            return
        if self.path.startswith("/files/pkg-") and self.path.endswith(".metadata"):
            self.send_response(200)
            self.send_header("Content-Length", str(len(METADATA)))
            self.end_headers()
            self.wfile.write(METADATA)
            return
        if self.path != "/simple/pkg/":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", pages.JSON_TYPE)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def loopback() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Pages.seen = []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple"
    finally:
        server.shutdown()
        server.server_close()


def _index(url: str, cache: Path, *, fetch: bool, started: int = 1) -> HttpIndex:
    """An index on ``url`` whose pool has ``started`` workers running and set up."""
    index = HttpIndex(
        url,
        new_session(NetConfig()),
        Cache(cache),
        wheel_filter=wheel_filter([TARGET]),
        net_config=NetConfig() if fetch else None,
        workers=max(started, 1),
    )
    index.worker.first = started
    index.worker.prepare()
    assert index.worker.wait_ready(30)
    return index


@pytest.mark.parametrize("fetch", [True, False], ids=["fetched-there", "parsed-there"])
def test_an_index_has_its_cold_pages_done_by_a_worker(
    tmp_path: Path, loopback: str, fetch: bool
) -> None:
    """Through a real loopback index: a page never fetched is fetched and parsed by a
    worker (given the network settings), or fetched here and parsed there (a large one);
    either way the files are what parsing here gives, and the page and its summary are
    cached for the next run, which needs no worker."""
    url = loopback
    index = _index(url, tmp_path, fetch=fetch)
    files = list(index.project_files(canonicalize_name("pkg")))
    assert index.worker.fetched == (1 if fetch else 0)
    assert index.stats["pages"] == 1 and index.stats["bytes"] == len(_Pages.body)
    index.close()
    here, others = page_parse.parse(
        _Pages.body,
        pages.JSON_TYPE,
        page_url=f"{url}/pkg/",
        index=url,
        name="pkg",
        wheel_filter=wheel_filter([TARGET]),
    )
    assert files == here and index.other_files(canonicalize_name("pkg")) == others
    again = HttpIndex(
        url, new_session(NetConfig()), Cache(tmp_path), wheel_filter=wheel_filter([TARGET])
    )
    assert list(again.project_files(canonicalize_name("pkg"))) == here
    assert again.worker._workers == [] and _Pages.seen == ["/simple/pkg/"]
    again.close()


def test_a_worker_fetch_fails_as_fetching_here_would(tmp_path: Path, loopback: str) -> None:
    there = _index(loopback, tmp_path / "a", fetch=True)
    with pytest.raises(SourceError) as failed_there:
        there.project_files(canonicalize_name("broken"))
    assert there.worker.fetched == 0
    assert there.project_files(canonicalize_name("missing")) == []  # a 404: no such project
    assert there.worker.fetched == 1
    there.close()
    here = _index(loopback, tmp_path / "b", fetch=False)
    with pytest.raises(SourceError) as failed_here:
        here.project_files(canonicalize_name("broken"))
    here.close()
    assert failed_there.value.render() == failed_here.value.render()
    assert "answered 500" in failed_there.value.message


def _wheel(url: str, name: str, digest: str | None) -> DistFile:
    return DistFile(
        filename=f"{name}-1.0-py3-none-any.whl",
        url=f"{url.rsplit('/', 1)[0]}/files/{name}-1.0-py3-none-any.whl",
        index=url,
        sha256="0" * 64,
        metadata=digest or True,
    )


def test_a_worker_fetches_metadata_as_here_and_caches_it(tmp_path: Path, loopback: str) -> None:
    digest = hashlib.sha256(METADATA).hexdigest()
    there = _index(loopback, tmp_path, fetch=True, started=page_parse.METADATA_WORKERS)
    assert there.metadata(_wheel(loopback, "pkg", digest)) == METADATA
    assert there.worker.metadata_fetched == 1 and there.stats["metadata"] == 1
    there.close()
    assert _Pages.seen == ["/files/pkg-1.0-py3-none-any.whl.metadata"]
    again = HttpIndex(
        loopback, new_session(NetConfig()), Cache(tmp_path), wheel_filter=wheel_filter([TARGET])
    )  # the worker cached it where this process looks: no request, no worker
    assert again.metadata(_wheel(loopback, "pkg", digest)) == METADATA
    assert _Pages.seen == ["/files/pkg-1.0-py3-none-any.whl.metadata"]
    assert again.worker._workers == []
    again.close()


@pytest.mark.parametrize(
    ("name", "digest"), [("pkg", "1" * 64), ("gone", None)], ids=["tampered", "missing"]
)
def test_a_worker_metadata_fetch_fails_as_fetching_here_would(
    tmp_path: Path, loopback: str, name: str, digest: str | None
) -> None:
    failures = []
    for fetch in (True, False):
        index = _index(
            loopback, tmp_path / str(fetch), fetch=fetch, started=page_parse.METADATA_WORKERS
        )
        with pytest.raises(SourceError) as failed:
            index.metadata(_wheel(loopback, name, digest))
        assert index.worker.metadata_fetched == 0
        index.close()
        failures.append(failed.value.render())
    there, here = failures
    assert there == here and name in there


@pytest.mark.parametrize(
    ("fetch", "started"),
    [(False, page_parse.METADATA_WORKERS), (True, page_parse.METADATA_WORKERS - 1)],
    ids=["no fetch settings", "fewer workers running"],
)
def test_metadata_is_fetched_here_without_fetch_settings_or_with_fewer_workers(
    tmp_path: Path, loopback: str, fetch: bool, started: int
) -> None:
    # One worker is kept busy by the pages alone: this process fetches the metadata then.
    index = _index(loopback, tmp_path, fetch=fetch, started=started)
    assert index.metadata(_wheel(loopback, "pkg", None)) == METADATA
    assert index.worker.metadata_fetched == 0 and index.stats["metadata"] == 1
    index.close()


def test_metadata_starts_no_worker(tmp_path: Path, loopback: str) -> None:
    # A lock whose pages are all cached may still miss some metadata: it is fetched here,
    # not by a worker started for it (pages start them).
    index = HttpIndex(
        loopback,
        new_session(NetConfig()),
        Cache(tmp_path),
        wheel_filter=wheel_filter([TARGET]),
        net_config=NetConfig(),
    )
    assert index.metadata(_wheel(loopback, "pkg", None)) == METADATA
    assert not any(w.started for w in index.worker._workers)
    index.close()


def test_booted_workers_are_taken_by_the_first_pool() -> None:
    page_parse.boot(1)
    (booted,) = page_parse._BOOTED
    worker = page_parse.PageWorkers(wheel_filter([TARGET]), size=1)
    worker.prepare()
    assert page_parse._BOOTED == [] and worker._workers[0].process is booted
    assert worker.wait_ready(30)
    assert _there(worker, _page(400)) is not None
    worker.close()
    assert booted.returncode == 0


def test_a_pool_takes_every_booted_worker_and_starts_them_at_once() -> None:
    page_parse.boot(2)
    booted = list(page_parse._BOOTED)
    worker = page_parse.PageWorkers(wheel_filter([TARGET]), size=2)  # first=1: booted win
    worker.prepare()
    assert page_parse._BOOTED == []
    assert sorted(id(w.process) for w in worker._workers) == sorted(map(id, booted))
    assert worker.wait_ready(30)
    worker.close()
    assert [p.returncode for p in booted] == [0, 0]


def test_a_large_spec_starts_every_worker_a_small_one_one() -> None:
    assert page_parse.workers_for(1) == 1
    assert page_parse.workers_for(page_parse.LARGE_SPEC - 1) == 1
    assert page_parse.workers_for(page_parse.LARGE_SPEC) == page_parse.WORKERS


def test_booted_workers_no_pool_takes_exit_with_this_process() -> None:
    page_parse.boot(2)
    booted = list(page_parse._BOOTED)
    assert len(booted) == 2
    page_parse._release_booted()  # (what exiting runs)
    assert page_parse._BOOTED == []
    assert [p.wait(timeout=30) for p in booted] == [0, 0]
    for process in booted:
        assert process.stdout is not None
        process.stdout.close()


def test_a_worker_that_stops_answering_is_given_up_on(monkeypatch: pytest.MonkeyPatch) -> None:
    worker = page_parse.PageWorkers(wheel_filter([TARGET]), size=1)
    worker.prepare()
    assert worker.wait_ready(30)
    (only,) = worker._workers
    process = only.process
    assert process is not None
    monkeypatch.setattr(page_parse, "answer_seconds", lambda: 0.5)
    os.kill(process.pid, signal.SIGSTOP)  # alive, but answering nothing
    try:
        assert _there(worker, _page(400)) is None  # given up on: parsed here instead
        assert worker._workers == []  # and not asked again
        assert _there(worker, _page(400)) is None
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGCONT)
        worker.close()
    assert process.poll() is not None  # stopped for good (killed when it would not exit)


def test_a_worker_fetch_counts_the_bytes_of_its_page_alone(tmp_path: Path, loopback: str) -> None:
    index = _index(loopback, tmp_path, fetch=True)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(index.project_files, [canonicalize_name(n) for n in ("pkg", "a", "b")]))
    assert index.worker.fetched == 3
    assert index.stats["bytes"] == len(_Pages.body)  # 404s add nothing, and nothing twice
    index.close()


def test_a_worker_exits_at_once_when_its_input_ends_with_a_fetch_in_flight(
    tmp_path: Path,
) -> None:
    """Nobody reads a worker's answers once its input has ended: it does not wait for a
    fetch still in flight (here one a server never answers) before it exits."""

    stalled = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(stalled.accept()[0]), daemon=True).start()
    url = f"http://127.0.0.1:{stalled.getsockname()[1]}/simple"
    index = _index(url, tmp_path, fetch=True)

    def ask() -> None:
        with contextlib.suppress(SourceError):  # (then fetched here, from the same server)
            index.project_files(canonicalize_name("pkg"))

    asking = threading.Thread(target=ask, daemon=True)
    asking.start()
    try:
        for _ in range(500):  # until the worker's request has reached the server
            if accepted:
                break
            threading.Event().wait(0.01)
        assert accepted
        processes = [w.process for w in index.worker._workers if w.process is not None]
        started = time.monotonic()
        index.worker.close()
        assert processes and [p.returncode for p in processes] == [0] * len(processes)
        assert time.monotonic() - started < 3
    finally:
        index.close()
        for connection in accepted:
            connection.close()
        stalled.close()
