"""Parse index pages: the files some target can use, on this core or on another.

A cold lock is bound by one interpreter's lock: the resolver, HTTP and page parsing take
turns on one core while the second idles.  Parsing a large page (hundreds of kilobytes to
megabytes of JSON, most of it files for other platforms) is the largest share, and it needs
nothing but the page's bytes and the targets' tags, so `PageWorkers` does it in a worker
process and hands back the page's summary (`page_summary`: the kept files and the others'
names), which the caller reads as it would a cached one.  Small pages, and any page when a
worker cannot be had, are parsed here.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import IO

from packaging.utils import canonicalize_name

from reprolock.resolve.python import page_summary, pages, select
from reprolock.resolve.python.index import DistFile
from reprolock.resolve.python.target import WheelFilter

WORKER_BYTES = 256 * 1024  # smaller pages parse faster here than they travel
# One worker per core beyond the one this interpreter keeps busy, two at most.
WORKERS = min(2, max(1, (os.cpu_count() or 2) - 1))


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


# -- the worker process -----------------------------------------------------------------
# Messages are framed by their length, over the worker's stdin and stdout (only this
# process and the child it started speak on them).  The first is the targets' tag sets
# (JSON); then per page a JSON header [content type, page URL, index, name] and the body;
# each page is answered b"s" + its summary, b"n" (no summary can be stored) or b"e" + the
# PageError's text.
_LENGTH = struct.Struct(">Q")


def _write(stream: IO[bytes], *payloads: bytes) -> None:
    for payload in payloads:
        stream.write(_LENGTH.pack(len(payload)))
        stream.write(payload)
    stream.flush()


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


def _filter_message(wheel_filter: WheelFilter | None) -> bytes:
    if wheel_filter is None:
        return b"null"
    return json.dumps([sorted(tags) for tags in wheel_filter.tag_sets]).encode()


def _filter_of(message: bytes) -> WheelFilter | None:
    sets = json.loads(message)
    if sets is None:
        return None
    return WheelFilter.of_tag_sets(frozenset((p, a, q) for p, a, q in tags) for tags in sets)


def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    """The worker's loop: parse each page it is sent until its input ends."""
    cap = 1 << 40
    wheel_filter = _filter_of(_read(requests, cap))
    while True:
        try:
            head = _read(requests, 1 << 20)
        except EOFError:
            return
        content_type, page_url, index, name = json.loads(head)
        body = _read(requests, cap)
        try:
            files, others = parse(
                body,
                content_type,
                page_url=page_url,
                index=index,
                name=name,
                wheel_filter=wheel_filter,
            )
        except pages.PageError as exc:
            _write(answers, b"e" + str(exc).encode("utf-8", "replace"))
            continue
        summary = page_summary.dump_summary(files, others, page_url=page_url)
        _write(answers, b"n" if summary is None else b"s" + summary)


# -- in the caller ----------------------------------------------------------------------
class _Worker:
    """One worker process, started on first use."""

    def __init__(self, wheel_filter: WheelFilter | None) -> None:
        self.wheel_filter = wheel_filter
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process (it boots while this one goes on); OSError when it cannot."""
        if self.process is not None:
            return
        # the same interpreter with the same flags (-I, -E, -S...): the same reprolock
        flags_of: Callable[[], list[str]] = getattr(
            subprocess, "_args_from_interpreter_flags", list
        )
        flags = flags_of()
        self.process = subprocess.Popen(
            [sys.executable, *flags, "-m", "reprolock.resolve.python.page_parse"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self.process.stdin is not None
        _write(self.process.stdin, _filter_message(self.wheel_filter))

    def ask(self, head: bytes, body: bytes) -> bytes:
        """The worker's answer for one page; OSError, EOFError or ValueError when it
        cannot be started or asked."""
        self.start()
        assert self.process is not None
        assert self.process.stdin is not None and self.process.stdout is not None
        _write(self.process.stdin, head, body)
        return _read(self.process.stdout, 4 * len(body) + (1 << 20))

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(OSError):
            if process.stdin is not None:
                process.stdin.close()  # the worker's input ends: it returns
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


class PageWorkers:
    """Worker processes that parse large pages into summaries, started as pages come.

    `summary` returns None when the page is better parsed here: it is small, or no worker
    could be started or one died (workers are then not tried again).  A page waits for a
    free worker otherwise: this interpreter's time is the resolver's.  A malformed page
    raises `pages.PageError` as parsing here would.
    """

    def __init__(self, wheel_filter: WheelFilter | None, *, size: int = WORKERS) -> None:
        self.wheel_filter = wheel_filter
        self.size = size
        self._idle: list[_Worker] = []
        self._started = 0
        self._failed = False
        self._free = threading.Condition()

    def _take(self) -> _Worker | None:
        with self._free:
            while not self._failed:
                if self._idle:
                    return self._idle.pop()
                if self._started < self.size:
                    self._started += 1
                    return _Worker(self.wheel_filter)
                self._free.wait()
            return None

    def prepare(self) -> None:
        """Start the workers now, so that they have booted when the first large page
        comes (called before the first page is fetched; a worker that cannot start
        leaves parsing here, as in `summary`)."""
        with self._free:
            if self._failed or self._started >= self.size:
                return
            missing = self.size - self._started
            self._started = self.size
        started: list[_Worker] = []
        try:
            for _ in range(missing):
                worker = _Worker(self.wheel_filter)
                worker.start()
                started.append(worker)
        except (OSError, ValueError):
            for worker in started:
                worker.stop()
            with self._free:
                self._failed = True
                self._free.notify_all()
            return
        with self._free:
            closed = self._failed
            if not closed:
                self._idle.extend(started)
                self._free.notify_all()
        if closed:
            for worker in started:
                worker.stop()

    def summary(
        self, body: bytes, content_type: str, *, page_url: str, index: str, name: str
    ) -> bytes | None:
        if len(body) < WORKER_BYTES:
            return None
        worker = self._take()
        if worker is None:
            return None
        head = json.dumps([content_type, page_url, index, name]).encode()
        try:
            answer = worker.ask(head, body)
        except (OSError, EOFError, ValueError):
            worker.stop()
            with self._free:
                self._failed = True
                self._free.notify_all()
            return None
        with self._free:
            closed = self._failed
            if not closed:
                self._idle.append(worker)
                self._free.notify()
        if closed:
            worker.stop()
        if answer[:1] == b"e":
            raise pages.PageError(answer[1:].decode("utf-8", "replace"))
        return answer[1:] if answer[:1] == b"s" else None

    def close(self) -> None:
        with self._free:
            self._failed = True
            idle, self._idle = self._idle, []
            self._free.notify_all()
        for worker in idle:
            worker.stop()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
