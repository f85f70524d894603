"""What long work reports while it runs: counters an observer (the CLI's progress line)
polls. The work never prints; without an observer it reports to no one."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Protocol

Stats = Callable[[], Mapping[str, int]]
"""A snapshot of the work's counters: requests, bytes, files, layers (see the callers)."""


class Observer(Protocol):
    """Shows progress while the work runs (the CLI's progress line)."""

    def watch(self, stats: Stats) -> AbstractContextManager[None]: ...


class Silent:
    """An observer that shows nothing."""

    def watch(self, stats: Stats) -> AbstractContextManager[None]:
        del stats
        return contextlib.nullcontext()
