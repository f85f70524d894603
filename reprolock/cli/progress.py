"""A one-line progress display on a terminal; silent in CI, when piped, and with -q."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager

INTERVAL = 0.2  # seconds between redraws


class ProgressLine:
    """Shows what long work has done so far on stderr, redrawn in place, cleared at the end:
    requests and bytes while locking, files and bytes while fetching, layers and bytes while
    an image is read (`describe`)."""

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
        start = time.monotonic()
        width = max(shutil.get_terminal_size((100, 24)).columns - 1, 20)

        def loop() -> None:
            while not stop.wait(INTERVAL):
                text = f"{self.label}: {describe(stats(), time.monotonic() - start)}"
                sys.stderr.write(f"\r{text[:width]}\x1b[K")
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


def describe(stats: Mapping[str, int], seconds: float = 0.0) -> str:
    """The counters as words: ``3 projects, 6 requests, 2.5 MB`` (index pages, metadata and
    range requests), ``12/40 files, 120.5/980.2 MB`` (downloads), ``3/7 layers, 1.2/3.4 GB``
    (an image's layers; ``spooled``: copied from a daemon first); a rate once it means
    something."""
    if "pages" in stats:
        requests = stats.get("pages", 0) + stats.get("metadata", 0) + stats.get("ranges", 0)
        return (
            f"{stats.get('pages', 0)} projects, {requests} requests, "
            f"{stats.get('bytes', 0) / 1e6:.1f} MB"
        )
    parts = []
    if "spooled" in stats:
        parts.append(f"{size(stats['spooled'])} from the daemon")
    if "files-total" in stats:
        parts.append(f"{stats.get('files', 0)}/{stats['files-total']} files")
    if stats.get("layers"):
        parts.append(f"{stats.get('layers-done', 0)}/{stats['layers']} layers")
    done = stats.get("bytes", 0) + stats.get("spooled", 0)
    total = stats.get("bytes-total")
    if total:
        parts.append(f"{size(stats.get('bytes', 0), total)}/{size(total)}")
    elif stats.get("bytes") or "spooled" not in stats:
        parts.append(size(stats.get("bytes", 0)))
    if seconds >= 1 and done:
        parts.append(f"{size(int(done / seconds))}/s")
    return ", ".join(parts)


def size(count: int, unit_of: int | None = None) -> str:
    """``980.2 MB``, ``1.2 GB`` (decimal units, as pip and docker print them); with
    ``unit_of``, the number only, in that count's unit (``120.5/980.2 MB``)."""
    scale = unit_of if unit_of is not None else count
    for unit, factor in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if scale >= factor:
            number = f"{count / factor:.1f}"
            return number if unit_of is not None else f"{number} {unit}"
    return str(count) if unit_of is not None else f"{count} B"
