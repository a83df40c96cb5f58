from __future__ import annotations

import pytest

from providers.errors import UpstreamHTTPError, UpstreamProtocolError, UpstreamTimeout, UpstreamUnreachable
from routing.latency import LatencyBoard
from routing.retry import (
    RetryPolicy,
    backoff_seconds,
    is_retryable,
    retry_after_seconds,
    wait_before_retry,
)

POLICY = RetryPolicy()


def http(status: int, code: str | None = None, **headers: str) -> UpstreamHTTPError:
    return UpstreamHTTPError("x", status=status, code=code, headers=headers)


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 529])
def test_retryable_statuses(status: int):
    assert is_retryable(http(status))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 408, 409, 413, 422])
def test_other_4xx_never_retried(status: int):
    assert not is_retryable(http(status))


def test_transport_failures_retried_but_not_rejected_credentials_or_bad_answers():
    assert is_retryable(UpstreamTimeout("t"))
    assert is_retryable(UpstreamUnreachable("u"))
    assert not is_retryable(http(502, code="upstream_auth_failed"))
    assert not is_retryable(UpstreamProtocolError("p"))


def test_backoff_doubles_up_to_the_maximum_with_jitter_bounds():
    assert [backoff_seconds(POLICY, n, 0.5) for n in range(4)] == pytest.approx([0.1, 0.2, 0.4, 0.8])
    assert backoff_seconds(POLICY, 20, 0.5) == pytest.approx(10.0)
    assert backoff_seconds(POLICY, 0, 0.0) == pytest.approx(0.09)
    assert backoff_seconds(POLICY, 0, 0.999999) == pytest.approx(0.11, abs=1e-6)


def test_retry_after_hints():
    assert retry_after_seconds({"retry-after": "2"}) == 2.0
    assert retry_after_seconds({"Retry-After-Ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after_seconds({"retry-after": "Thu, 01 Jan 1970 00:00:10 GMT"}, now=4.0) == 6.0
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


def test_wait_before_retry():
    assert wait_before_retry(POLICY, error=http(503), retry=0, draw=0.5, remaining=60) == pytest.approx(0.1)
    assert wait_before_retry(POLICY, error=http(503), retry=3, draw=0.5, remaining=60) is None
    assert wait_before_retry(POLICY, error=http(400), retry=0, draw=0.5, remaining=60) is None
    limited = http(429, **{"retry-after": "1"})
    assert wait_before_retry(POLICY, error=limited, retry=0, draw=0.5, remaining=60) == 1.0
    # A hint that outlasts the deadline: no retry on this deployment.
    assert wait_before_retry(POLICY, error=limited, retry=0, draw=0.5, remaining=0.5) is None


def test_latency_board_moving_average_and_merge():
    board = LatencyBoard(alpha=0.5)
    board.observe(1, 100.0)
    board.observe(1, 300.0)
    assert board.averages()[1] == 200.0
    board.merge({1: 5.0, 2: 40.0})  # this process measured 1 since the last sync: keeps its own
    assert dict(board.averages()) == {1: 200.0, 2: 40.0}
    assert board.take_dirty() == {1: 200.0}
    board.merge({1: 5.0})
    assert board.averages()[1] == 5.0
