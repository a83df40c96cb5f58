from __future__ import annotations

import pytest

from routing.stats import CallCounts, StatsBoard, merge_totals, parse_shared, shared_fields


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_counts_per_deployment_over_a_window_of_minutes():
    clock = Clock(600.0)  # minute 10
    board = StatsBoard(clock=clock)
    board.record(1, failed=False, latency_ms=100.0)
    board.record(1, failed=True, latency_ms=5000.0)
    clock.now = 661.0  # minute 11
    board.record(1, failed=False, latency_ms=300.0)
    board.record(2, failed=False, latency_ms=50.0)

    assert board.window(1) == {
        1: CallCounts(calls=1, failures=0, latency_ms=300.0),
        2: CallCounts(calls=1, failures=0, latency_ms=50.0),
    }
    both = board.window(2)
    assert both[1] == CallCounts(calls=3, failures=1, latency_ms=400.0)
    assert both[1].error_rate == pytest.approx(1 / 3)
    assert both[1].mean_latency_ms == 200.0  # failures' time is not latency
    assert CallCounts().error_rate is None and CallCounts().mean_latency_ms is None


def test_increments_are_handed_out_once_and_old_minutes_forgotten():
    clock = Clock(0.0)
    board = StatsBoard(clock=clock, keep_minutes=2)
    board.record(7, failed=False, latency_ms=10.0)
    assert board.take_dirty() == {(0, 7): CallCounts(calls=1, failures=0, latency_ms=10.0)}
    assert board.take_dirty() == {}
    clock.now = 300.0  # minute 5: minute 0 is past the two kept
    board.record(7, failed=True, latency_ms=1.0)
    assert board.take_dirty() == {(5, 7): CallCounts(calls=1, failures=1, latency_ms=0.0)}
    assert board.window(60) == {7: CallCounts(calls=1, failures=1, latency_ms=0.0)}


def test_the_shared_hash_round_trips_and_merges():
    fields = {**shared_fields(CallCounts(3, 1, 12.5), 4), **shared_fields(CallCounts(1, 0, 2.0), 9)}
    as_redis = {name.encode(): str(value).encode() for name, value in fields.items()}
    minute = parse_shared(as_redis)
    assert minute == {4: CallCounts(3, 1, 12.5), 9: CallCounts(1, 0, 2.0)}
    assert merge_totals([minute, {4: CallCounts(2, 2, 0.0)}]) == {
        4: CallCounts(5, 3, 12.5),
        9: CallCounts(1, 0, 2.0),
    }
