"""Parse index pages: the files some target can use, on this core or on another.

A cold lock is bound by one interpreter's lock: the resolver, HTTP and page parsing take
turns on one core while the second idles.  Parsing a large page (hundreds of kilobytes to
megabytes of JSON, most of it files for other platforms) is the largest share, and it needs
nothing but the page's bytes and the targets' tags, so `PageWorker` does it in a worker
process and hands back the page's summary (`page_summary`: the kept files and the others'
names), which the caller reads as it would a cached one.  Small pages, and any page when a
worker cannot be had, are parsed here.
"""

from __future__ import annotations

import contextlib
import json
import struct
import subprocess
import sys
import threading
from typing import IO

from packaging.utils import canonicalize_name

from reprolock.resolve.python import page_summary, pages, select
from reprolock.resolve.python.index import DistFile
from reprolock.resolve.python.target import WheelFilter

WORKER_BYTES = 256 * 1024  # smaller pages parse faster here than they travel


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
class PageWorker:
    """One worker process that parses large pages into summaries, started on first use.

    `summary` returns None when the page is better parsed here: it is small, the worker is
    busy with another page (this core parses that one meanwhile), no worker could be
    started, or it died (it is then not tried again).  A malformed page raises
    `pages.PageError` as parsing here would.
    """

    def __init__(self, wheel_filter: WheelFilter | None) -> None:
        self.wheel_filter = wheel_filter
        self._process: subprocess.Popen[bytes] | None = None
        self._failed = False
        self._busy = threading.Lock()

    def _started(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "reprolock.resolve.python.page_parse"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            assert self._process.stdin is not None
            _write(self._process.stdin, _filter_message(self.wheel_filter))
        return self._process

    def summary(
        self, body: bytes, content_type: str, *, page_url: str, index: str, name: str
    ) -> bytes | None:
        if len(body) < WORKER_BYTES or self._failed or not self._busy.acquire(blocking=False):
            return None
        try:
            process = self._started()
            assert process.stdin is not None and process.stdout is not None
            head = json.dumps([content_type, page_url, index, name]).encode()
            _write(process.stdin, head, body)
            answer = _read(process.stdout, 4 * len(body) + (1 << 20))
        except (OSError, EOFError, ValueError):
            self._failed = True
            self._stop()
            return None
        finally:
            self._busy.release()
        if answer[:1] == b"e":
            raise pages.PageError(answer[1:].decode("utf-8", "replace"))
        return answer[1:] if answer[:1] == b"s" else None

    def _stop(self) -> None:
        process, self._process = self._process, None
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

    def close(self) -> None:
        with self._busy:
            self._failed = True
            self._stop()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
