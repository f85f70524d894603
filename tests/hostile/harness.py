"""The hostile-input corpus's harness: run reprolock as a separate process under the
limits a hostile input must not break, and check what it touched.

Each case runs ``python -m reprolock ARGS`` in a `Sandbox`: its own HOME, TMPDIR, cache
and working folder, an address-space limit (``RLIMIT_AS``, 512 MiB by default), and a
wall-clock limit (60 s).  After the run, `Sandbox.check` asserts the exit code, that
nothing appeared outside the folders the command may write (``outside/`` holds the
sentinels a payload aims at), and that no temporary files were left behind.
"""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MEMORY = 512 << 20
SECONDS = 60.0
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Outcome:
    code: int
    out: str
    err: str
    seconds: float

    @property
    def text(self) -> str:
        return self.out + self.err


def _limit(memory: int, file_size: int | None) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        if file_size is not None:  # a "full disk": writes past it fail with EFBIG
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))

    return apply


@dataclass
class Sandbox:
    """Folders for one hostile case; ``work`` is the command's working folder."""

    root: Path
    work: Path = field(init=False)
    home: Path = field(init=False)
    tmp: Path = field(init=False)
    cache: Path = field(init=False)
    outside: Path = field(init=False)

    def __post_init__(self) -> None:
        for name in ("work", "home", "tmp", "cache", "outside"):
            folder = self.root / name
            folder.mkdir(parents=True, exist_ok=True)
            setattr(self, name, folder)
        (self.outside / "sentinel").write_text("untouched\n")

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "TMPDIR": str(self.tmp),
            "REPROLOCK_CACHE_DIR": str(self.cache),
            "PIP_CONFIG_FILE": "/dev/null",
            "NO_COLOR": "1",
            "PYTHONPATH": str(REPO),
            "LANG": "C.UTF-8",
            # RLIMIT_AS counts address space reserved, not memory used: glibc reserves
            # 64 MiB for each thread's malloc arena, so a few threads would "use" the whole
            # 512 MiB while touching a fraction of it. Two arenas keep the limit about memory.
            "MALLOC_ARENA_MAX": "2",
        }
        env.update(extra or {})
        return env

    def run(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        memory: int = MEMORY,
        seconds: float = SECONDS,
        stdin: bytes | None = None,
        file_size: int | None = None,
    ) -> Outcome:
        """``reprolock ARGS`` in ``work``; a run past ``seconds`` fails the test."""
        started = time.monotonic()
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "reprolock", *args],
                cwd=self.work,
                env=self.env(env),
                input=stdin,
                capture_output=True,
                timeout=seconds,
                preexec_fn=_limit(memory, file_size),
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"reprolock {' '.join(args)} ran past {seconds:g} s") from exc
        return Outcome(
            proc.returncode,
            proc.stdout.decode("utf-8", "replace"),
            proc.stderr.decode("utf-8", "replace"),
            time.monotonic() - started,
        )

    def check(
        self,
        outcome: Outcome,
        codes: Sequence[int],
        *,
        says: Sequence[str] = (),
        writable: Sequence[Path] = (),
    ) -> None:
        """The exit code is one of ``codes`` (never 70), the output mentions each of
        ``says``, nothing outside ``work``/``cache``/``home`` and ``writable`` changed,
        and the temporary folder is empty again."""
        detail = f"exit {outcome.code} in {outcome.seconds:.1f} s:\n{outcome.text[-3000:]}"
        assert outcome.code != 70, detail
        assert "Traceback" not in outcome.err, detail
        assert outcome.code in codes, detail
        for text in says:
            assert text in outcome.text, f"{text!r} not in output; {detail}"
        assert sorted(p.name for p in self.outside.iterdir()) == ["sentinel"], (
            f"something was written outside: {sorted(self.outside.iterdir())}"
        )
        assert (self.outside / "sentinel").read_text() == "untouched\n"
        leftovers = sorted(p for p in self.tmp.rglob("*"))
        assert not leftovers, f"left in TMPDIR: {leftovers[:10]}"
        del writable


class Handler(BaseHTTPRequestHandler):
    """Dispatches GETs to the server's routes: path prefix → function(handler)."""

    server: HostileServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.requests.append((self.path, dict(self.headers.items())))
        path = self.path.split("?", 1)[0]
        for prefix, route in sorted(self.server.routes.items(), key=lambda r: -len(r[0])):
            if path.startswith(prefix):
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    route(self)
                return
        self.reply(404, b"not found")

    def reply(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/octet-stream",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def stream(
        self,
        status: int,
        chunks: Iterator[bytes],
        content_type: str = "application/octet-stream",
        headers: dict[str, str] | None = None,
    ) -> None:
        """A body of unknown length (connection closed at the end)."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Connection", "close")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.close_connection = True
        for chunk in chunks:
            self.wfile.write(chunk)
            self.wfile.flush()


Route = Callable[[Handler], None]


class HostileServer(ThreadingHTTPServer):
    """A loopback HTTP server whose answers each test scripts."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def route(self, prefix: str, function: Route) -> None:
        self.routes[prefix] = function

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def endless(piece: bytes, *, delay: float = 0.0) -> Iterator[bytes]:
    """The same bytes forever (a body that never ends), optionally slowly."""
    while True:
        if delay:
            time.sleep(delay)
        yield piece
