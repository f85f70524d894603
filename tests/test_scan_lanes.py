"""A layer's hashing, shared between its reader and its walk (`reprolock.image.scan`).

Whichever thread would wait for the other hashes instead; these tests pin what that
must never change: every digest is the one a plain, single-threaded hash gives, in
whatever order the two threads happen to take the jobs, and what the jobs keep alive is
bounded by the walk's position, however a hostile layer lays out its files.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import os
import threading
import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reprolock.bounded import STEP
from reprolock.errors import SourceError
from reprolock.image import scan as scan_module
from reprolock.image.scan import LAG, scan_layer
from tests.ociregistry import layer_tar


def _record(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


@given(st.lists(st.integers(0, 1000), min_size=1, max_size=40), st.integers(1, 3))
@settings(max_examples=30, deadline=None)
def test_jobs_are_done_in_the_order_given_whoever_does_them(ats: list[int], threads: int) -> None:
    """Jobs added while other threads step through the lane run once each, in order."""
    lane = scan_module._Lane()
    done: list[int] = []
    stop = threading.Event()

    def helper() -> None:
        while not stop.is_set():
            lane.step()

    helpers = [threading.Thread(target=helper) for _ in range(threads)]
    for thread in helpers:
        thread.start()
    try:
        position = 0
        for i, at in enumerate(ats):
            position += at
            lane.add(lambda i=i: done.append(i), position)  # type: ignore[misc]
            lane.keep_up(position)
    finally:
        stop.set()
        for thread in helpers:
            thread.join()
    lane.finish()
    assert done == list(range(len(ats)))


def test_the_walk_does_the_jobs_it_has_passed_by_more_than_the_lag() -> None:
    """What a lane keeps alive is bounded by the walk's position, not by the bytes its jobs
    hash: a hostile layer of tiny hashed files between huge unhashed ones cannot make it
    hold more than `LAG` bytes of the tar behind the walk."""
    lane = scan_module._Lane()
    done: list[int] = []
    for at in range(0, 200 * STEP, STEP):
        lane.add(lambda at=at: done.append(at), at)  # type: ignore[misc]
        lane.keep_up(at + STEP)
        left = list(lane._jobs)
        assert all(job_at >= at + STEP - LAG for _job, job_at in left)
    assert done == sorted(done)
    assert len(lane._jobs) <= LAG // STEP + 1
    lane.drop()
    assert not lane._jobs


@pytest.mark.parametrize("helpers", [0, 1, 2])
@pytest.mark.parametrize("ahead", [1, 2, scan_module.AHEAD])
@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_digests_are_exact_however_the_threads_share_the_hashing(
    monkeypatch: pytest.MonkeyPatch, helpers: int, ahead: int, compress: bool
) -> None:
    """Small read-ahead queues make the reader and the walk take turns at hashing as
    often as possible, and helper threads (more cores) take jobs as they come: the
    diff_id, the blob digest and every file's RECORD hash and md5 must still be those of
    a plain hash of the same bytes, and no thread outlives the scan."""
    monkeypatch.setattr(scan_module, "AHEAD", ahead)
    monkeypatch.setattr(scan_module, "_helpers", lambda: helpers)
    before = threading.active_count()
    files: dict[str, bytes] = {}
    for i in range(120):  # small files between big ones, sizes around piece ends
        size = (STEP + 13 if i % 17 == 0 else 0) + (i * 977) % 5000
        files[f"site-packages/p{i}.py"] = bytes((i * 31 + j) % 253 for j in range(size))
    plain = layer_tar(files)
    stored = gzip.compress(plain, compresslevel=1) if compress else plain
    scan = scan_layer(
        io.BytesIO(stored),
        0,
        what="test layer",
        want_content=lambda _path: False,
        want_hash=lambda path: not path.endswith("5.py"),
        want_md5=lambda path: path.endswith("7.py"),
    )
    assert scan.diff_id == "sha256:" + hashlib.sha256(plain).hexdigest()
    assert scan.blob_digest == "sha256:" + hashlib.sha256(stored).hexdigest()
    entries = {entry.path: entry for entry in scan.entries}
    for name, data in files.items():
        entry = entries[name]
        assert entry.sha256 == (None if name.endswith("5.py") else _record(data)), name
        assert entry.md5 == (hashlib.md5(data).hexdigest() if name.endswith("7.py") else None)
    assert threading.active_count() == before


def test_helpers_only_where_cores_are_free(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two cores are the reader's and the walk's: no helper; one per lane beyond that."""
    for cores, helpers in ((1, 0), (2, 0), (3, 1), (4, 2), (64, 2)):
        monkeypatch.setattr(os, "sched_getaffinity", lambda _pid, n=cores: set(range(n)))
        assert scan_module._helpers() == helpers


@pytest.mark.parametrize(
    "damage",
    [lambda data: data[: len(data) // 2], lambda data: data[:-9] + b"\x00" * 9],
    ids=["truncated", "corrupt-trailer"],
)
@pytest.mark.parametrize("helpers", [0, 2])
def test_a_failed_scan_stops_its_threads_and_drops_its_hashing(
    monkeypatch: pytest.MonkeyPatch, damage: Callable[[bytes], bytes], helpers: int
) -> None:
    monkeypatch.setattr(scan_module, "_helpers", lambda: helpers)
    files = {f"f{i}": bytes([i]) * (STEP // 3) for i in range(12)}
    before = threading.active_count()
    with pytest.raises(SourceError):
        scan_layer(
            io.BytesIO(damage(gzip.compress(layer_tar(files), compresslevel=1))),
            0,
            what="test layer",
            want_content=lambda _path: False,
            want_hash=lambda _path: True,
        )
    assert threading.active_count() == before


def test_a_helper_s_failure_fails_the_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    """A job that fails on a helper thread (no memory) is lost with it: closing the stream
    must raise that error, never leave digests that miss the job's bytes."""
    monkeypatch.setattr(scan_module, "_helpers", lambda: 1)
    before = threading.active_count()
    stream = scan_module._LayerStream(io.BytesIO(layer_tar({"a": b"1"})), "test layer")

    def fails() -> None:
        raise MemoryError("no memory for the hash")

    stream.files.add(fails, 0)  # the walk is not running: only the helper can take it
    deadline = time.monotonic() + 30
    while stream.files._jobs and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(MemoryError):
        stream.close()
    assert threading.active_count() == before
