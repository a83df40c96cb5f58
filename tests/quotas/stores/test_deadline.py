"""The limiter's Redis deadline measures Redis, not the process: a loop that stalls while a
reply is waiting is not blamed on Redis (no error, no unchecked admission), a Redis that does
not answer still fails within the timeout, and a stall past the wall-time cap is reported as
the process's overload. Real Redis, a real event loop stalled by a blocking callback."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest

from gateway_site.runtime.overload import LoopMonitor
from quotas.errors import Overloaded
from quotas.limiter import Limiter
from quotas.policy import LimitPolicy, Limits, TierPolicy, build_plan
from quotas.stores.base import StoreOverloaded, StoreUnavailable
from quotas.stores.shared import RedisStore, create_client
from tests.conftest import redis_url

TIMEOUT = 0.1


def a_plan(prefix: str, rid: str):
    import datetime as dt

    tier = TierPolicy(name="t", algorithm="fixed_window", limits=Limits(requests_per_minute=100))
    return build_plan(
        LimitPolicy(tenant_id=7, key_id=70, tenant_tier=tier),
        prefix=prefix,
        request_id=rid,
        model="m",
        tokens=1,
        cost_micro=0,
        lease_ms=5_000,
        now=dt.datetime.now(dt.UTC),
        tz=dt.UTC,
    )


def stall_after_sending(seconds: float) -> None:
    """Block the loop as soon as the running coroutine waits (its command is sent by then)."""
    asyncio.get_running_loop().call_soon(time.sleep, seconds)


async def test_a_stall_while_the_reply_waits_is_not_blamed_on_redis(redis_prefix):
    monitor = LoopMonitor(interval=0.01)
    monitor.start()
    await asyncio.sleep(0.02)
    errors: list[str] = []
    store = RedisStore(
        create_client(redis_url(), timeout=5),
        timeout=TIMEOUT,
        cap=5,
        stalled=monitor.stalled,
        on_error=lambda: errors.append("redis"),
    )
    limiter = Limiter(store, fail_open=True, on_alert=print)

    stall_after_sending(0.5)  # five times the timeout
    admission = await limiter.admit(a_plan(redis_prefix, "a"))

    assert admission.plan is not None  # checked, not admitted unchecked
    assert (limiter.unenforced_total, errors) == (0, [])
    await limiter.aclose()
    await monitor.aclose()


async def test_without_the_stall_discount_the_same_stall_is_blamed_on_redis(redis_prefix):
    """The control: the plain timeout of the same length marks Redis down and fails open."""
    errors: list[str] = []
    store = RedisStore(
        create_client(redis_url(), timeout=5), timeout=TIMEOUT, cap=5, on_error=lambda: errors.append("redis")
    )
    limiter = Limiter(store, fail_open=True, on_alert=print)

    stall_after_sending(0.5)
    admission = await limiter.admit(a_plan(redis_prefix, "a"))

    assert admission.plan is None
    assert (limiter.unenforced_total, errors) == (1, ["redis"])
    await limiter.aclose()


@pytest.fixture
def silent_redis() -> Iterator[int]:
    """A TCP server that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield server.getsockname()[1]
    server.close()


async def test_a_redis_that_does_not_answer_fails_within_the_timeout(silent_redis):
    monitor = LoopMonitor(interval=0.01)
    monitor.start()
    store = RedisStore(
        create_client(f"redis://127.0.0.1:{silent_redis}/0", timeout=5),
        timeout=TIMEOUT,
        cap=5,
        stalled=monitor.stalled,
    )
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await store.evaluate(a_plan("gwtest:silent:", "a"))
    assert TIMEOUT <= time.monotonic() - started < 1.0
    await store.aclose()
    await monitor.aclose()


async def test_a_stall_past_the_cap_is_the_process_overload_not_a_redis_error(silent_redis):
    monitor = LoopMonitor(interval=0.01)
    monitor.start()
    await asyncio.sleep(0.02)
    errors: list[str] = []
    store = RedisStore(
        create_client(f"redis://127.0.0.1:{silent_redis}/0", timeout=5),
        timeout=TIMEOUT,
        cap=0.3,
        stalled=monitor.stalled,
        on_error=lambda: errors.append("redis"),
    )
    limiter = Limiter(store, fail_open=True, on_alert=print)

    stall_after_sending(0.6)
    with pytest.raises(StoreOverloaded):
        await store.evaluate(a_plan("gwtest:silent:", "b"))
    stall_after_sending(0.6)
    with pytest.raises(Overloaded) as refused:
        await limiter.admit(a_plan("gwtest:silent:", "c"))

    assert (refused.value.status, refused.value.code, refused.value.headers) == (
        503,
        "overloaded",
        {"retry-after": "1"},
    )
    assert (limiter.unenforced_total, errors) == (0, [])
    await limiter.aclose()
    await monitor.aclose()
