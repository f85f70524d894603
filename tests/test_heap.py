"""The collector is relaxed inside `fewer_collections` blocks and restored after the outermost."""

from __future__ import annotations

import gc

from reprolock.api.heap import fewer_collections


def test_blocks_nest_and_the_outermost_restores() -> None:
    before = gc.get_threshold()
    frozen = gc.get_freeze_count()
    with fewer_collections():
        assert gc.get_threshold()[0] == 20_000
        assert gc.get_freeze_count() > frozen
        with fewer_collections():
            assert gc.get_threshold()[0] == 20_000
        assert gc.get_threshold()[0] == 20_000  # the inner block restored nothing
        assert gc.get_freeze_count() > frozen
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen
