"""Large index pages are parsed in a worker process, with the same result as here."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from reprolock.model import Platform, PythonVersion
from reprolock.net.cache import Cache
from reprolock.net.config import NetConfig
from reprolock.net.session import new_session
from reprolock.resolve.python import page_parse, page_summary, pages
from reprolock.resolve.python.http_index import HttpIndex
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
    yield found
    found.close()


def test_a_large_page_parsed_in_the_worker_reads_as_parsed_here(
    worker: page_parse.PageWorkers,
) -> None:
    body = _page(400)
    assert len(body) > page_parse.WORKER_BYTES
    summary = worker.summary(body, pages.JSON_TYPE, page_url=URL, index=INDEX, name="pkg")
    assert summary is not None
    there = page_summary.load_summary(summary, page_url=URL, index=INDEX)
    here = page_parse.parse(
        body,
        pages.JSON_TYPE,
        page_url=URL,
        index=INDEX,
        name="pkg",
        wheel_filter=wheel_filter([TARGET]),
    )
    assert there == here
    files, others = here
    assert len(files) == 400 + 400  # the target's wheel and the sdist of each release
    assert len(others) == 3 * 400


def test_small_pages_are_parsed_here(worker: page_parse.PageWorkers) -> None:
    body = _page(3)
    assert worker.summary(body, pages.JSON_TYPE, page_url=URL, index=INDEX, name="pkg") is None


def test_a_malformed_large_page_fails_as_it_would_here(worker: page_parse.PageWorkers) -> None:
    body = _page(400).replace(b'"hashes": {"sha256": "' + b"0" * 63, b'"hashes": {"sha256": "x', 1)
    with pytest.raises(pages.PageError, match="is not 64 hex digits"):
        worker.summary(body, pages.JSON_TYPE, page_url=URL, index=INDEX, name="pkg")
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
    assert worker.summary(body, pages.JSON_TYPE, page_url=URL, index=INDEX, name="pkg") is None
    assert worker.summary(body, pages.JSON_TYPE, page_url=URL, index=INDEX, name="pkg") is None
    worker.close()


def test_a_worker_that_dies_is_not_asked_again() -> None:
    worker = page_parse.PageWorkers(wheel_filter([TARGET]), size=1)
    body = _page(400)
    assert worker.summary(body, pages.JSON_TYPE, page_url=URL, index=INDEX, name="pkg")
    (only,) = worker._idle
    process = only.process
    assert process is not None and process.pid != os.getpid()
    process.kill()
    process.wait()
    assert worker.summary(body, pages.JSON_TYPE, page_url=URL, index=INDEX, name="pkg") is None
    assert only.process is None and not worker._idle  # reaped, and not started again
    assert worker.summary(body, pages.JSON_TYPE, page_url=URL, index=INDEX, name="pkg") is None
    worker.close()


def test_pages_wait_for_a_free_worker_and_all_are_parsed() -> None:
    worker = page_parse.PageWorkers(wheel_filter([TARGET]), size=2)
    body = _page(400)
    expected = worker.summary(body, pages.JSON_TYPE, page_url=URL, index=INDEX, name="pkg")
    with ThreadPoolExecutor(6) as pool:
        found = list(
            pool.map(
                lambda _n: worker.summary(
                    body, pages.JSON_TYPE, page_url=URL, index=INDEX, name="pkg"
                ),
                range(12),
            )
        )
    assert found == [expected] * 12
    assert worker._started == 2
    processes = [w.process for w in worker._idle]
    worker.close()
    assert all(p is not None and p.returncode == 0 for p in processes)  # reaped, exited


def test_prepared_workers_are_running_before_the_first_page_and_then_used() -> None:
    worker = page_parse.PageWorkers(wheel_filter([TARGET]), size=2)
    worker.prepare()
    processes = [w.process for w in worker._idle]
    assert len(processes) == 2 and all(p is not None and p.poll() is None for p in processes)
    worker.prepare()  # once only
    assert worker._started == 2 and len(worker._idle) == 2
    body = _page(400)
    assert worker.summary(body, pages.JSON_TYPE, page_url=URL, index=INDEX, name="pkg")
    assert {w.process for w in worker._idle} == set(processes)  # no third process
    worker.close()
    assert all(p is not None and p.returncode == 0 for p in processes)


def test_a_closed_pool_prepares_nothing() -> None:
    worker = page_parse.PageWorkers(wheel_filter([TARGET]), size=2)
    worker.close()
    worker.prepare()
    assert worker._idle == [] and worker._started == 0


def test_an_index_parses_its_large_pages_in_a_worker(tmp_path: Path) -> None:
    """Through a real loopback index: a large page goes to a worker, and what the index
    gives (and caches as the page's summary) is what parsing here gives."""
    body = _page(400)

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/simple/pkg/":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", pages.JSON_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/simple"
    session = new_session(NetConfig())
    try:
        index = HttpIndex(url, session, Cache(tmp_path), wheel_filter=wheel_filter([TARGET]))
        files = list(index.project_files(canonicalize_name("pkg")))
        assert index.worker._started == 1  # the page went to a worker
        index.close()
        here, others = page_parse.parse(
            body,
            pages.JSON_TYPE,
            page_url=f"{url}/pkg/",
            index=url,
            name="pkg",
            wheel_filter=wheel_filter([TARGET]),
        )
        assert files == here and index.other_files(canonicalize_name("pkg")) == others
        # A second run reads the summary the first cached: no page parsed, no worker.
        again = HttpIndex(url, session, Cache(tmp_path), wheel_filter=wheel_filter([TARGET]))
        assert list(again.project_files(canonicalize_name("pkg"))) == here
        assert again.worker._started == 0
        again.close()
    finally:
        session.close()
        server.shutdown()
        server.server_close()
