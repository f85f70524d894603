"""What the resolver waits for goes first: the awaited mark and the smallest-first lock."""

from __future__ import annotations

import threading
import time

import pytest

from reprolock.resolve.python.urgency import SmallestFirst, awaited, is_awaited


def test_the_awaited_mark_holds_inside_only_and_on_this_thread() -> None:
    seen: list[bool] = []
    assert not is_awaited()
    with awaited():
        assert is_awaited()
        with awaited():
            assert is_awaited()
        assert is_awaited()  # nested: still inside the outer one
        other = threading.Thread(target=lambda: seen.append(is_awaited()))
        other.start()
        other.join()
    assert not is_awaited()
    assert seen == [False]


def test_waiters_go_smallest_first_then_in_arrival_order() -> None:
    gate = SmallestFirst()
    order: list[str] = []

    def work(name: str, size: int) -> None:
        with gate.turn(size):
            order.append(name)

    with gate.turn(0):  # held while the others line up
        threads = []
        for name, size in [("big", 900), ("small", 10), ("mid", 500), ("small-later", 10)]:
            thread = threading.Thread(target=work, args=(name, size))
            thread.start()
            threads.append(thread)
            deadline = time.monotonic() + 10
            while len(gate._waiting) < len(threads) and time.monotonic() < deadline:
                time.sleep(0.001)
        assert len(gate._waiting) == 4
    for thread in threads:
        thread.join(10)
    assert order == ["small", "small-later", "mid", "big"]


def test_a_turn_is_released_when_the_work_fails() -> None:
    gate = SmallestFirst()
    with pytest.raises(ValueError, match="boom"), gate.turn(1):
        raise ValueError("boom")
    with gate.turn(2):  # not left held
        pass


def test_a_waiter_interrupted_in_line_does_not_block_the_ones_behind_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gate = SmallestFirst()
    done: list[str] = []
    with gate.turn(0):
        # a waiter whose wait is interrupted (as KeyboardInterrupt would) while it is first
        real_wait = threading.Condition.wait

        def interrupted(self: threading.Condition, timeout: float | None = None) -> bool:
            raise KeyboardInterrupt

        monkeypatch.setattr(threading.Condition, "wait", interrupted)
        with pytest.raises(KeyboardInterrupt), gate.turn(1):
            pass
        monkeypatch.setattr(threading.Condition, "wait", real_wait)
        assert gate._waiting == []
        waiter = threading.Thread(target=_take, args=(gate, 5, done))
        waiter.start()
        deadline = time.monotonic() + 10
        while not gate._waiting and time.monotonic() < deadline:
            time.sleep(0.001)
    waiter.join(10)
    assert done == ["taken"]


def _take(gate: SmallestFirst, size: int, done: list[str]) -> None:
    with gate.turn(size):
        done.append("taken")
