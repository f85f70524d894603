"""What the resolver waits for goes first.

Fetches run ahead of the resolver on a thread pool; when the resolver needs one that has
not started, it runs it itself (`Fetcher.now`), marked *awaited* here, so that the layer
doing the fetch can take the quicker way for it (a page a busy worker would queue behind
others is fetched in-process: the resolver's core is idle while it waits).  Pages are
parsed one at a time, the smallest waiting first (`SmallestFirst`): a small page the
resolver needs next is not kept waiting by the large ones fetched beside it.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_STATE = threading.local()


@contextmanager
def awaited() -> Iterator[None]:
    """Mark the work run inside as awaited by the resolver (on this thread)."""
    before = getattr(_STATE, "awaited", False)
    _STATE.awaited = True
    try:
        yield
    finally:
        _STATE.awaited = before


def is_awaited() -> bool:
    """Whether the work running on this thread is awaited by the resolver."""
    return bool(getattr(_STATE, "awaited", False))


class SmallestFirst:
    """A lock whose waiters go in order of size, smallest first (ties: first come)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._held = False
        self._waiting: list[tuple[int, int]] = []
        self._order = itertools.count()

    @contextmanager
    def turn(self, size: int) -> Iterator[None]:
        """Hold the lock for work of ``size``, once no smaller work waits."""
        with self._changed:
            entry = (size, next(self._order))
            heapq.heappush(self._waiting, entry)
            try:
                while self._held or self._waiting[0] != entry:
                    self._changed.wait()
            except BaseException:  # interrupted while waiting: leave the line, let others on
                self._waiting.remove(entry)
                heapq.heapify(self._waiting)
                self._changed.notify_all()
                raise
            heapq.heappop(self._waiting)
            self._held = True
        try:
            yield
        finally:
            with self._changed:
                self._held = False
                self._changed.notify_all()
