"""A one-line progress display on a terminal; silent in CI and when output is piped."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager


class ProgressLine:
    """Shows request and byte counts on stderr while long network work runs."""

    def __init__(self, label: str, *, enabled: bool) -> None:
        self.label = label
        self.enabled = enabled

    @classmethod
    def for_terminal(cls, label: str, quiet: bool) -> ProgressLine:
        enabled = (
            not quiet
            and sys.stderr.isatty()
            and not os.environ.get("CI")
            and os.environ.get("TERM") != "dumb"
        )
        return cls(label, enabled=enabled)

    def watch(self, stats: Callable[[], Mapping[str, int]]) -> AbstractContextManager[None]:
        return self._run(stats) if self.enabled else contextlib.nullcontext()

    @contextlib.contextmanager
    def _run(self, stats: Callable[[], Mapping[str, int]]) -> Iterator[None]:
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(0.2):
                s = stats()
                requests = s.get("pages", 0) + s.get("metadata", 0) + s.get("ranges", 0)
                mb = s.get("bytes", 0) / 1e6
                sys.stderr.write(
                    f"\r{self.label}: {s.get('pages', 0)} projects, "
                    f"{requests} requests, {mb:.1f} MB\x1b[K"
                )
                sys.stderr.flush()

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
