"""Rate-limit maths: pure functions over one limit line's stored state and the time, for the
four algorithms. No I/O, no clock: ``now_ms`` is passed in (integer milliseconds since the
epoch). The Redis script (``quotas/stores/scripts.py``) performs exactly these computations, operation for
operation, so both stores decide alike; the in-process store calls these functions.

A line allows ``limit`` units (requests, or tokens) per window of ``window_ms``:

* ``fixed_window``: a counter per window aligned to the epoch (minutes, UTC days); it resets at
  the window's end.
* ``sliding_window``: the sliding-window counter: the previous window's count weighted by the
  part of it still inside the last ``window_ms``, plus the current window's count.
* ``token_bucket``: a bucket of ``limit`` tokens refilled continuously at ``limit / window``;
  bursts up to the whole limit, then the steady rate.
* ``leaky_bucket``: a meter draining continuously at ``limit / window`` that holds one
  sixtieth of the limit (a second's flow for per-minute lines, a minute's for per-day lines), so
  traffic is smoothed to the steady rate; a request bigger than that fits only an empty bucket.

A request whose cost exceeds the whole ``limit`` never fits (``retry_ms`` is None).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Algorithm = Literal["fixed_window", "sliding_window", "token_bucket", "leaky_bucket"]
ALGORITHMS: tuple[Algorithm, ...] = ("fixed_window", "sliding_window", "token_bucket", "leaky_bucket")
LEAKY_BURST_DIVISOR = 60

MINUTE_MS = 60_000
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a line says about one request.

    ``remaining``: units left (after this request when admitted), rounded down; ``reset_ms``:
    until the line is back to its full allowance; ``retry_ms``: when refused, until this same
    request would be admitted (None: never, it is larger than the limit); 0 when admitted."""

    admitted: bool
    remaining: int
    reset_ms: int
    retry_ms: int | None


@dataclass(frozen=True, slots=True)
class Bucket:
    """A bucket line's stored state: its value (tokens left, or the meter's level) at ``at_ms``."""

    value: float
    at_ms: int


def window_index(now_ms: int, window_ms: int) -> int:
    return now_ms // window_ms


def _floor(value: float) -> int:
    return math.floor(max(0.0, value))


def _window_reset(sliding: bool, current: float, previous: float, until_end: int, window_ms: int) -> int:
    if current > 0:
        return until_end + window_ms if sliding else until_end
    if sliding and previous > 0:
        return until_end
    return 0


def _sliding_wait(
    current: float, previous: float, elapsed: int, *, limit: float, window_ms: int, cost: float
) -> int:
    room = limit - current - cost
    if room >= 0:
        # Within this window, once enough of the previous window has slid out.
        return math.ceil(window_ms - room * window_ms / previous - elapsed)
    # In the next window this window's count becomes the weighted one.
    later = window_ms - (limit - cost) * window_ms / current
    return math.ceil((window_ms - elapsed) + max(0.0, later))


def window(
    *,
    sliding: bool,
    current: float,
    previous: float,
    now_ms: int,
    window_ms: int,
    limit: float,
    cost: float,
) -> Outcome:
    """Fixed or sliding window. ``current`` / ``previous``: counts of the window containing
    ``now_ms`` and of the one before (ignored for a fixed window). Admitting adds ``cost`` to
    the current window's count (the caller stores it)."""
    elapsed = now_ms - window_index(now_ms, window_ms) * window_ms
    until_end = window_ms - elapsed
    weight = (window_ms - elapsed) / window_ms if sliding else 0.0
    used = previous * weight + current
    if cost > limit:
        return Outcome(
            False, _floor(limit - used), _window_reset(sliding, current, previous, until_end, window_ms), None
        )
    if used + cost <= limit:
        reset = _window_reset(sliding, current + cost, previous, until_end, window_ms)
        return Outcome(True, _floor(limit - (used + cost)), reset, 0)
    wait = (
        _sliding_wait(current, previous, elapsed, limit=limit, window_ms=window_ms, cost=cost)
        if sliding
        else until_end
    )
    return Outcome(
        False, _floor(limit - used), _window_reset(sliding, current, previous, until_end, window_ms), wait
    )


def token_bucket(
    state: Bucket | None, *, now_ms: int, window_ms: int, limit: float, cost: float
) -> tuple[Outcome, Bucket]:
    """Returns the outcome and the state to store (unchanged tokens when refused)."""
    rate = limit / window_ms
    tokens = limit if state is None else min(limit, state.value + (now_ms - state.at_ms) * rate)
    if cost > limit:
        return Outcome(False, _floor(tokens), math.ceil((limit - tokens) / rate), None), Bucket(
            tokens, now_ms
        )
    if tokens >= cost:
        left = tokens - cost
        return Outcome(True, _floor(left), math.ceil((limit - left) / rate), 0), Bucket(left, now_ms)
    wait = math.ceil((cost - tokens) / rate)
    return Outcome(False, _floor(tokens), math.ceil((limit - tokens) / rate), wait), Bucket(tokens, now_ms)


def leaky_bucket(
    state: Bucket | None, *, now_ms: int, window_ms: int, limit: float, cost: float
) -> tuple[Outcome, Bucket]:
    """Returns the outcome and the state to store (the drained level when refused)."""
    rate = limit / window_ms
    capacity = limit / LEAKY_BURST_DIVISOR
    level = 0.0 if state is None else max(0.0, state.value - (now_ms - state.at_ms) * rate)
    if cost > limit:
        return Outcome(False, _floor(capacity - level), math.ceil(level / rate), None), Bucket(level, now_ms)
    if level + cost <= capacity or level <= 0:
        after = level + cost
        return Outcome(True, _floor(capacity - after), math.ceil(after / rate), 0), Bucket(after, now_ms)
    wait = math.ceil((level + cost - capacity) / rate) if cost <= capacity else math.ceil(level / rate)
    return Outcome(False, _floor(capacity - level), math.ceil(level / rate), wait), Bucket(level, now_ms)


def settle_bucket(
    algorithm: Algorithm, state: Bucket, *, now_ms: int, window_ms: int, limit: float, delta: float
) -> Bucket:
    """Replace a reservation by the actual amount: ``delta`` = actual - reserved. A token
    bucket may go into debt (a request that used more than estimated delays the next ones);
    a meter never drops below empty."""
    rate = limit / window_ms
    if algorithm == "token_bucket":
        tokens = min(limit, state.value + (now_ms - state.at_ms) * rate)
        return Bucket(min(limit, tokens - delta), now_ms)
    level = max(0.0, state.value - (now_ms - state.at_ms) * rate)
    return Bucket(max(0.0, level + delta), now_ms)


def settle_count(count: float, delta: float) -> float:
    """A window counter after replacing a reservation by the actual amount."""
    return max(0.0, count + delta)


def bucket_ttl_ms(algorithm: Algorithm, state: Bucket, *, window_ms: int, limit: float) -> int:
    """How long a bucket's state matters: until it is full (token) or empty (leaky) again."""
    rate = limit / window_ms
    missing = limit - state.value if algorithm == "token_bucket" else state.value
    return math.ceil(max(0.0, missing) / rate) + 1000
