"""The rate-limit maths of the four algorithms, pure, with an injected clock, at the window
edges: what is admitted, what is left, when it resets and exactly when a refused request would
be admitted (one millisecond earlier it still is not)."""

from __future__ import annotations

import pytest

from quotas.algorithms import (
    Bucket,
    Outcome,
    bucket_ttl_ms,
    leaky_bucket,
    settle_bucket,
    settle_count,
    token_bucket,
    window,
)

W = 60_000
T0 = 1_800_000_000_000 - (1_800_000_000_000 % W)  # the first millisecond of a minute window


def fixed(current, now, *, limit=10, cost=1):
    return window(sliding=False, current=current, previous=0, now_ms=now, window_ms=W, limit=limit, cost=cost)


def sliding(current, previous, now, *, limit=10, cost=1):
    return window(
        sliding=True, current=current, previous=previous, now_ms=now, window_ms=W, limit=limit, cost=cost
    )


# --- fixed window -------------------------------------------------------------------------


def test_fixed_window_admits_up_to_the_limit_then_waits_for_the_next_window():
    outcomes = [fixed(count, T0 + 1_000) for count in range(11)]

    assert [o.admitted for o in outcomes] == [True] * 10 + [False]
    assert outcomes[0] == Outcome(True, 9, W - 1_000, 0)
    assert outcomes[9] == Outcome(True, 0, W - 1_000, 0)
    assert outcomes[10] == Outcome(False, 0, W - 1_000, W - 1_000)


def test_fixed_window_edges():
    # The last millisecond of the window is still this window; the next one starts fresh.
    assert fixed(10, T0 + W - 1) == Outcome(False, 0, 1, 1)
    assert fixed(0, T0 + W) == Outcome(True, 9, W, 0)
    # A window is [start, start + W): its first millisecond already has the full wait.
    assert fixed(10, T0) == Outcome(False, 0, W, W)


def test_fixed_window_empty_window_resets_now():
    assert fixed(0, T0 + 5, limit=10, cost=0) == Outcome(True, 10, 0, 0)


def test_fixed_window_tokens_and_a_request_larger_than_the_limit():
    assert fixed(900, T0 + 30_000, limit=1_000, cost=100) == Outcome(True, 0, 30_000, 0)
    assert fixed(901, T0 + 30_000, limit=1_000, cost=100) == Outcome(False, 99, 30_000, 30_000)
    assert fixed(0, T0, limit=1_000, cost=1_001) == Outcome(False, 1_000, 0, None)


# --- sliding window -----------------------------------------------------------------------


def test_sliding_window_counts_the_previous_window_by_its_overlap():
    # Previous window full: at the start of this one all of it still counts.
    assert sliding(0, 10, T0) == Outcome(False, 0, W, 6_000)
    # After 6 s, 90% of it counts: 9, so one more fits.
    assert sliding(0, 10, T0 + 6_000) == Outcome(True, 0, W - 6_000 + W, 0)
    assert not sliding(0, 10, T0 + 5_999).admitted


def test_sliding_window_wait_into_the_next_window():
    # This window is full: wait until this window's count has slid out enough in the next one.
    refused = sliding(10, 0, T0 + 30_000)
    assert refused == Outcome(False, 0, 30_000 + W, 36_000)
    # 36 s later: the next window, 6 s in, counts 90% of 10 = 9.
    assert sliding(0, 10, T0 + 66_000).admitted
    assert not sliding(0, 10, T0 + 65_999).admitted


def test_sliding_window_boundary_between_windows():
    # The last millisecond of a window and the first of the next see almost the same total.
    last = sliding(5, 5, T0 + W - 1)
    first = sliding(0, 5, T0 + W)
    assert last.admitted and first.admitted
    # 5 + 5/60000 of the previous window + 1: three more fit; a millisecond later four do.
    assert (last.remaining, first.remaining) == (3, 4)


def test_sliding_window_reset_is_when_nothing_counts_any_more():
    assert sliding(0, 0, T0 + 10, cost=0).reset_ms == 0
    assert sliding(0, 3, T0 + 10, cost=0).reset_ms == W - 10
    assert sliding(3, 3, T0 + 10).reset_ms == (W - 10) + W


def test_sliding_window_request_larger_than_the_limit_never_fits():
    assert sliding(0, 0, T0, limit=100, cost=101).retry_ms is None


# Where each case is admitted outright (remaining, reset); every other case is refused.
ADMITTED_OUTRIGHT = {
    (30_000, 3, 10, 2): Outcome(True, 0, 90_000, 0),
    (59_999, 3, 10, 2): Outcome(True, 4, 60_001, 0),
    (59_999, 8, 8, 1): Outcome(True, 0, 60_001, 0),
}


@pytest.mark.parametrize("elapsed", [0, 1, 17_333, 29_999, 30_000, 59_999])
@pytest.mark.parametrize(("current", "previous", "cost"), [(3, 10, 2), (8, 8, 1), (10, 10, 4), (0, 10, 10)])
def test_sliding_window_retry_is_exact(elapsed, current, previous, cost):
    """Wherever a request is refused, it is admitted after exactly ``retry_ms`` and not 1 ms
    before (counts are carried into the next window when the wait crosses it); the cases
    admitted outright are admitted with their exact outcome."""
    now = T0 + elapsed
    outcome = sliding(current, previous, now, cost=cost)
    expected = ADMITTED_OUTRIGHT.get((elapsed, current, previous, cost))
    if expected is not None:
        assert outcome == expected
        return
    assert not outcome.admitted
    later = now + outcome.retry_ms

    def at(moment):
        if moment >= T0 + W:
            return sliding(0, current, moment, cost=cost)
        return sliding(current, previous, moment, cost=cost)

    assert at(later).admitted
    assert not at(later - 1).admitted


# --- token bucket -------------------------------------------------------------------------


def test_token_bucket_bursts_the_whole_limit_then_refills_at_the_rate():
    state = None
    results = []
    for _ in range(11):
        outcome, new = token_bucket(state, now_ms=T0, window_ms=W, limit=10, cost=1)
        results.append(outcome)
        if outcome.admitted:
            state = new
    assert [o.admitted for o in results] == [True] * 10 + [False]
    assert results[0] == Outcome(True, 9, 6_000, 0)
    assert results[10] == Outcome(False, 0, W, 6_000)
    # One token every 6 s.
    assert token_bucket(state, now_ms=T0 + 6_000, window_ms=W, limit=10, cost=1)[0].admitted
    assert not token_bucket(state, now_ms=T0 + 5_999, window_ms=W, limit=10, cost=1)[0].admitted


def test_token_bucket_refills_no_higher_than_the_limit():
    outcome, new = token_bucket(Bucket(3, T0), now_ms=T0 + 10 * W, window_ms=W, limit=10, cost=1)
    assert (outcome.remaining, new.value) == (9, 9)


def test_token_bucket_weighted_cost_and_too_large():
    outcome, _ = token_bucket(Bucket(400, T0), now_ms=T0, window_ms=W, limit=1_000, cost=500)
    assert outcome == Outcome(False, 400, 36_000, 6_000)
    assert token_bucket(None, now_ms=T0, window_ms=W, limit=1_000, cost=1_001)[0].retry_ms is None


def test_token_bucket_settlement_returns_unused_tokens_and_records_debt():
    state = Bucket(0, T0)
    # Reserved 500, used 200: 300 come back.
    assert settle_bucket("token_bucket", state, now_ms=T0, window_ms=W, limit=1_000, delta=-300) == Bucket(
        300, T0
    )
    # Used 400 more than reserved: the bucket goes into debt and the next request waits longer.
    debt = settle_bucket("token_bucket", state, now_ms=T0, window_ms=W, limit=1_000, delta=400)
    assert debt == Bucket(-400, T0)
    outcome, _ = token_bucket(debt, now_ms=T0 + 6_000, window_ms=W, limit=1_000, cost=1)
    assert outcome.retry_ms == 301 * 60  # from -300 tokens to 1
    assert bucket_ttl_ms("token_bucket", debt, window_ms=W, limit=1_000) == 84_000 + 1_000


# --- leaky bucket -------------------------------------------------------------------------


def test_leaky_bucket_smooths_to_the_rate_with_a_sixtieth_of_the_limit_as_burst():
    # 600 per minute: 10 per second drain, 10 of burst.
    state = None
    results = []
    for _ in range(11):
        outcome, new = leaky_bucket(state, now_ms=T0, window_ms=W, limit=600, cost=1)
        results.append(outcome)
        if outcome.admitted:
            state = new
    assert [o.admitted for o in results] == [True] * 10 + [False]
    assert results[0] == Outcome(True, 9, 100, 0)
    assert results[10] == Outcome(False, 0, 1_000, 100)
    assert leaky_bucket(state, now_ms=T0 + 100, window_ms=W, limit=600, cost=1)[0].admitted
    assert not leaky_bucket(state, now_ms=T0 + 99, window_ms=W, limit=600, cost=1)[0].admitted


def test_leaky_bucket_request_bigger_than_the_burst_fits_only_an_empty_bucket():
    # 10 per minute: the bucket holds 1/6 of a request, so requests are 6 s apart.
    first, state = leaky_bucket(None, now_ms=T0, window_ms=W, limit=10, cost=1)
    assert first == Outcome(True, 0, 6_000, 0)
    second, _ = leaky_bucket(state, now_ms=T0 + 1, window_ms=W, limit=10, cost=1)
    assert second == Outcome(False, 0, 5_999, 5_999)
    assert leaky_bucket(state, now_ms=T0 + 6_000, window_ms=W, limit=10, cost=1)[0].admitted
    assert not leaky_bucket(state, now_ms=T0 + 5_999, window_ms=W, limit=10, cost=1)[0].admitted
    assert leaky_bucket(None, now_ms=T0, window_ms=W, limit=10, cost=11)[0].retry_ms is None


def test_leaky_bucket_settlement_never_drops_below_empty():
    state = Bucket(5, T0)
    assert settle_bucket("leaky_bucket", state, now_ms=T0 + 100, window_ms=W, limit=600, delta=-10) == Bucket(
        0, T0 + 100
    )
    assert settle_bucket("leaky_bucket", state, now_ms=T0, window_ms=W, limit=600, delta=2) == Bucket(7, T0)


def test_window_settlement_never_drops_below_zero():
    assert settle_count(5, -7) == 0
    assert settle_count(5, 3) == 8
