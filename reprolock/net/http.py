"""Bounded HTTP: every request has an overall deadline and every body a byte cap.

``requests`` bounds each socket operation, not a request: a server that sends one
byte every few seconds, or headers that never end, would hold a run forever, and
``response.content`` reads whatever a server sends.  Here the headers must arrive within
``limits.request_seconds`` (they are awaited on a daemon thread, so a stalled server is
abandoned, not waited for), and the body is read in pieces as they arrive, each checked
against its cap and against a deadline that grows with the bytes received (a transfer
slower than ``limits.min_bytes_per_second`` on average is cut off).
"""

from __future__ import annotations

import _thread
import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

import requests

from reprolock import limits
from reprolock.errors import SourceError
from reprolock.net.session import describe_failure, redact

CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Reply:
    """A response read whole (within its cap)."""

    status: int
    headers: Mapping[str, str]  # case-insensitive
    url: str
    body: bytes

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name, default)


class Deadline:
    """The time a request may take: a base, plus one second per ``min_bytes_per_second``
    bytes received."""

    def __init__(self, what: str) -> None:
        caps = limits.current()
        self.what = what
        self.started = time.monotonic()
        self.base = caps.request_seconds
        self.rate = caps.min_bytes_per_second

    def check(self, received: int) -> None:
        elapsed = time.monotonic() - self.started
        if elapsed > self.base + received / self.rate:
            raise SourceError(
                f"{self.what}: cut off after {elapsed:.0f} s with {received} bytes received "
                "(the server is too slow or stalled).",
                hint="Retry later, or use a mirror; "
                f"{limits.ENV_PREFIX}REQUEST_SECONDS and "
                f"{limits.ENV_PREFIX}MIN_BYTES_PER_SECOND set the patience (docs/security.md).",
            )


UNREACHABLE_HINT = "Check the network, the proxy settings and the URL."


class _Senders:
    """Daemon threads that wait for responses' headers, reused from request to request
    (starting a thread per request cost ~1 ms).  A stalled request keeps its thread (it
    is abandoned, not waited for); a job finds an idle thread or gets a new one, so none
    waits behind another.  Daemon threads: an abandoned one never holds up the exit."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._idle = 0
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:  # a forked child has none of the parent's threads
        self._jobs = queue.SimpleQueue()
        self._idle = 0
        self._lock = threading.Lock()

    def submit(self, job: Callable[[], None]) -> None:
        """Run ``job`` (which must not raise) on a sender thread."""
        with self._lock:
            start = self._idle == 0
            if not start:
                self._idle -= 1  # that idle thread will take a job
        if start:
            # not threading.Thread: its start() waits until the thread runs, which takes a
            # switch interval when other threads hold the interpreter's lock.  Started before
            # the job is queued: a thread that cannot start strands no job.
            _thread.start_new_thread(self._serve, ())
        self._jobs.put(job)

    def _serve(self) -> None:
        jobs = self._jobs
        while True:
            jobs.get()()
            with self._lock:
                self._idle += 1


_SENDERS = _Senders()


def _send(
    session: requests.Session,
    url: str,
    what: str,
    kwargs: dict[str, Any],
    hint: str,
    *,
    method: str = "GET",
    upload: int = 0,
) -> requests.Response:
    """``session.request(method, url, stream=True)``, abandoned if the headers take too
    long: ``limits.request_seconds``, plus one second per ``min_bytes_per_second`` bytes
    of an ``upload`` (a body sent before the answer)."""
    caps = limits.current()
    seconds = caps.request_seconds + upload / caps.min_bytes_per_second
    box: dict[str, Any] = {}
    done = threading.Event()
    abandoned = threading.Event()

    def run() -> None:
        try:
            response = session.request(method, url, stream=True, **kwargs)
        except BaseException as exc:
            box["error"] = exc
        else:
            box["response"] = response
            if abandoned.is_set():
                response.close()
        finally:
            done.set()

    _SENDERS.submit(run)
    if not done.wait(seconds):
        abandoned.set()
        raise SourceError(
            f"{what}: no response from {redact(url)} within {seconds:g} s.",
            hint="The server is stalled or too slow; retry later, or use a mirror "
            f"({limits.ENV_PREFIX}REQUEST_SECONDS sets the patience).",
        )
    if "error" in box:
        error = box["error"]
        if isinstance(error, requests.RequestException):
            raise SourceError(
                f"cannot reach {redact(url)}: {describe_failure(error)}.", hint=hint
            ) from None
        raise error
    response: requests.Response = box["response"]
    return response


def _declared_length(response: requests.Response) -> int | None:
    text = response.headers.get("Content-Length", "")
    return int(text) if text.isdigit() and len(text) < 20 else None


class Streamed:
    """A response whose body is read in bounded pieces."""

    def __init__(self, response: requests.Response, what: str, cap: int, limit_name: str) -> None:
        self.response = response
        self.what = what
        self.cap = cap
        self.limit_name = limit_name
        self.deadline = Deadline(what)
        self.received = 0

    @property
    def status(self) -> int:
        return self.response.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return self.response.headers

    @property
    def url(self) -> str:
        return self.response.url

    def chunks(self) -> Iterator[bytes]:
        """The body, piece by piece; `SourceError` past the cap or the deadline."""
        declared = _declared_length(self.response)
        if declared is not None and declared > self.cap:
            raise limits.exceeded(
                self.what, self.limit_name, actual=f"the server declares {declared} bytes"
            )
        raw = self.response.raw
        while True:
            self.deadline.check(self.received)
            try:
                chunk = raw.read1(CHUNK, decode_content=True)
            except (requests.RequestException, OSError, ValueError) as exc:
                raise SourceError(
                    f"{self.what}: the transfer from {redact(self.url)} failed ({exc}).",
                    hint="Retry; check the network or the server.",
                ) from None
            except Exception as exc:  # urllib3's protocol and decoding errors
                raise SourceError(
                    f"{self.what}: the transfer from {redact(self.url)} failed "
                    f"({type(exc).__name__}).",
                    hint="Retry; check the network or the server.",
                ) from None
            if not chunk:
                return
            self.received += len(chunk)
            if self.received > self.cap:
                raise limits.exceeded(
                    self.what, self.limit_name, actual=f"over {self.received} bytes"
                )
            yield chunk

    def read(self) -> bytes:
        return b"".join(self.chunks())


@contextlib.contextmanager
def stream(
    session: requests.Session,
    url: str,
    *,
    what: str,
    cap: int,
    limit_name: str,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    auth: tuple[str, str] | None = None,
    unreachable_hint: str = UNREACHABLE_HINT,
) -> Iterator[Streamed]:
    """GET ``url``; the body is read through `Streamed.chunks` within ``cap``."""
    kwargs: dict[str, Any] = {"headers": dict(headers or {})}
    if params is not None:
        kwargs["params"] = dict(params)
    if auth is not None:
        kwargs["auth"] = auth
    response = _send(session, url, what, kwargs, unreachable_hint)
    try:
        ok = response.status_code in (200, 206)
        yield Streamed(
            response,
            what,
            cap if ok else min(cap, limits.current().token_bytes),
            limit_name if ok else "token_bytes",
        )
    finally:
        response.close()


def get(
    session: requests.Session,
    url: str,
    *,
    what: str,
    cap: int,
    limit_name: str,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    auth: tuple[str, str] | None = None,
    unreachable_hint: str = UNREACHABLE_HINT,
) -> Reply:
    """GET ``url`` and read its body whole, within ``cap`` (error bodies within
    ``limits.token_bytes``) and the request's deadline."""
    with stream(
        session,
        url,
        what=what,
        cap=cap,
        limit_name=limit_name,
        headers=headers,
        params=params,
        auth=auth,
        unreachable_hint=unreachable_hint,
    ) as response:
        body = response.read()
        return Reply(response.status, response.headers, response.url, body)


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    what: str,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    body: bytes | IO[bytes] | None = None,
    size: int = 0,
    unreachable_hint: str = UNREACHABLE_HINT,
) -> Reply:
    """``method`` (HEAD, POST, PUT, PATCH) to ``url`` with ``body`` (``size`` bytes, a
    stream is sent as it is read); the answer's body read within ``limits.token_bytes``.
    The answer must come within the request's time plus the upload's allowance."""
    kwargs: dict[str, Any] = {"headers": dict(headers or {}), "allow_redirects": False}
    if params is not None:
        kwargs["params"] = dict(params)
    if body is not None:
        kwargs["data"] = body
    response = _send(session, url, what, kwargs, unreachable_hint, method=method, upload=size)
    try:
        cap = limits.current().token_bytes
        streamed = Streamed(response, what, cap, "token_bytes")
        data = b"" if method == "HEAD" else streamed.read()
        return Reply(response.status_code, response.headers, response.url, data)
    finally:
        response.close()
