from __future__ import annotations

from routing.breaker import Breaker, BreakerBoard, BreakerPolicy, allows, on_failure, on_start, on_success

POLICY = BreakerPolicy(failure_threshold=3, success_threshold=2, open_seconds=10.0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_consecutive_failures_only():
    b = Breaker()
    b = on_failure(POLICY, b, 1.0)
    b = on_failure(POLICY, b, 2.0)
    b = on_success(POLICY, b, 3.0)  # a success resets the count
    assert b == Breaker()
    for t in (4.0, 5.0, 6.0):
        b = on_failure(POLICY, b, t)
    assert (b.state, b.opened_at) == ("open", 6.0)
    assert not allows(POLICY, b, 15.9)
    assert allows(POLICY, b, 16.0)


def test_half_open_lets_one_probe_at_a_time_and_closes_after_successes():
    b = Breaker(state="open", opened_at=0.0)
    b = on_start(POLICY, b, 10.0)
    assert (b.state, b.probing) == ("half_open", True)
    assert not allows(POLICY, b, 10.5)  # the second request waits for the probe
    b = on_success(POLICY, b, 11.0)
    assert (b.state, b.successes, b.probing) == ("half_open", 1, False)
    assert allows(POLICY, b, 11.0)
    b = on_success(POLICY, on_start(POLICY, b, 12.0), 12.0)
    assert b == Breaker()


def test_failed_probe_reopens():
    b = on_start(POLICY, Breaker(state="open", opened_at=0.0), 10.0)
    b = on_failure(POLICY, b, 11.0)
    assert (b.state, b.opened_at) == ("open", 11.0)
    assert not allows(POLICY, b, 20.0)


def test_board_reports_changes_and_adopts_shared_openings():
    clock = Clock()
    board = BreakerBoard(POLICY, clock=clock)
    for _ in range(3):
        board.failed(7)
    assert not board.allows(7)
    assert board.take_changes() == {7: 1000.0}
    other = BreakerBoard(POLICY, clock=clock)
    other.merge({7: 1000.0})
    assert not other.allows(7)
    clock.now += 10
    assert other.allows(7)
    other.start(7)
    assert not other.allows(7)
    other.succeeded(7)
    other.start(7)
    other.succeeded(7)
    assert other.allows(7) and other.take_changes() == {7: 0.0}
    board.merge({7: 0.0})  # closed elsewhere
    assert board.allows(7) and board.get(7) == Breaker()
