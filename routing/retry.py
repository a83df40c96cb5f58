"""When to retry an upstream failure and how long to wait first. Pure: the random draw and the
remaining deadline are passed in.

Retryable: connection failures and timeouts, 429 and 500, 502, 503, 504, 529 (Anthropic's
overloaded), as the adapters report them (an upstream 500 arrives as a 502, a 529 as a 503).
Never any other 4xx: the same request would fail the same way."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from providers.errors import UpstreamError, UpstreamHTTPError, UpstreamTimeout, UpstreamUnreachable

RETRYABLE_STATUSES: Final = frozenset({429, 500, 502, 503, 504, 529})
# The adapters map an upstream 401/403 (our credentials rejected) to a 502 with this code:
# a 4xx underneath, so never retried.
NOT_RETRYABLE_CODE: Final = "upstream_auth_failed"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``retries`` extra attempts per deployment; the n-th waits ``initial * multiplier**n``
    seconds capped at ``maximum``, then spread by +/- ``jitter`` (a fraction)."""

    retries: int = 3
    initial: float = 0.1
    maximum: float = 10.0
    multiplier: float = 2.0
    jitter: float = 0.1


def is_retryable(error: UpstreamError) -> bool:
    """The one decision on whether an upstream failure is worth another attempt."""
    if isinstance(error, (UpstreamTimeout, UpstreamUnreachable)):
        return True
    if error.code == NOT_RETRYABLE_CODE:
        return False
    return isinstance(error, UpstreamHTTPError) and error.status in RETRYABLE_STATUSES


def backoff_seconds(policy: RetryPolicy, retry: int, draw: float) -> float:
    """The wait before retry number ``retry`` (0 for the first), ``draw`` uniform in [0, 1)."""
    base = min(policy.maximum, policy.initial * policy.multiplier**retry)
    return max(0.0, base * (1 + policy.jitter * (2 * draw - 1)))


def retry_after_seconds(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """The upstream's ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date) hint."""
    lowered = {k.lower(): v for k, v in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def wait_before_retry(
    policy: RetryPolicy, *, error: UpstreamError, retry: int, draw: float, remaining: float
) -> float | None:
    """Seconds to wait before retrying ``error``, or None when it must not be retried here: not
    retryable, retries used up, or the wait would not end before the deadline (``remaining``).
    A 429's ``retry-after`` replaces the backoff when it is shorter than what remains."""
    if not is_retryable(error) or retry >= policy.retries:
        return None
    hint = retry_after_seconds(error.headers) if error.status == 429 else None
    wait = hint if hint is not None else backoff_seconds(policy, retry, draw)
    return wait if wait < remaining else None
