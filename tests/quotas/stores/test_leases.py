"""The Redis script's leases (real Redis): a quota's leases set expires with its quota hash, never
with a lease, so no reservation outlives its lease; a parallel limit's slots set is never cut
short by a later, shorter lease; reservations whose leases set was lost anyway are released by
the next read or decision, and a late settlement of one leaves ``reserved`` at zero."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from quotas.stores.base import QuotaState
from quotas.stores.shared import RedisStore, create_client
from tests.conftest import redis_url
from tests.quotas.stores.test_stores import T0_MS, plan, quota_policy, tier_policy


@pytest.fixture
async def redis_store(redis_prefix) -> AsyncIterator[tuple[RedisStore, aioredis.Redis]]:
    client = create_client(redis_url(), timeout=2)
    yield RedisStore(client), client
    await client.aclose()


@pytest.mark.parametrize(("period", "expiry"), [("day", "the period's end plus grace"), ("lifetime", "none")])
async def test_the_leases_set_expires_with_its_quota_hash(redis_store, redis_prefix, period, expiry):
    store, client = redis_store
    policy = quota_policy(period=period)
    long = dataclasses.replace(plan(policy, redis_prefix, "long", at_ms=T0_MS, cost=100), lease_ms=600_000)
    short = dataclasses.replace(plan(policy, redis_prefix, "short", at_ms=T0_MS, cost=100), lease_ms=1_000)
    assert (await store.evaluate(long, now_ms=T0_MS)).refusal is None
    assert (await store.evaluate(short, now_ms=T0_MS)).refusal is None

    line = short.quotas[0]
    if expiry == "none":
        assert line.expire_at_ms == 0
        assert (await client.pttl(line.key), await client.pttl(line.leases_key)) == (-1, -1)
    else:
        assert await client.pexpiretime(line.leases_key) == await client.pexpiretime(line.key)
        assert await client.pexpiretime(line.key) == line.expire_at_ms
    assert await client.zrange(line.leases_key, 0, -1, withscores=True) == [
        (b"short", T0_MS + 1_000),
        (b"long", T0_MS + 600_000),
    ]


async def test_a_shorter_lease_never_cuts_a_parallel_slot_short(redis_store, redis_prefix):
    store, _ = redis_store
    policy = tier_policy("fixed_window", max_parallel=2)
    long = dataclasses.replace(plan(policy, redis_prefix, "long", at_ms=T0_MS), lease_ms=60_000)
    short = dataclasses.replace(plan(policy, redis_prefix, "short", at_ms=T0_MS), lease_ms=100)
    assert (await store.evaluate(long, now_ms=T0_MS)).refusal is None
    assert (await store.evaluate(short, now_ms=T0_MS)).refusal is None
    await asyncio.sleep(0.3)  # past the short lease by Redis's own clock

    # "short"'s slot is free; "long" still holds its own until T0 + 60 s.
    assert (
        await store.evaluate(plan(policy, redis_prefix, "c", at_ms=T0_MS), now_ms=T0_MS + 200)
    ).refusal is None
    refused = await store.evaluate(plan(policy, redis_prefix, "d", at_ms=T0_MS), now_ms=T0_MS + 200)
    assert refused.refusal is not None and refused.refusal.kind == "parallel"


async def test_reservations_whose_leases_set_was_lost_are_released(redis_store, redis_prefix):
    store, client = redis_store
    policy = quota_policy()  # $0.001 hard
    lost = [plan(policy, redis_prefix, f"lost{i}", at_ms=T0_MS, cost=400) for i in range(2)]
    for each in lost:
        assert (await store.evaluate(each, now_ms=T0_MS)).refusal is None
    line = lost[0].quotas[0]
    await client.delete(line.leases_key)  # as a set that expired with its last lease left them

    assert await store.quota_states(lost[0].quotas, now_ms=T0_MS + 1) == (QuotaState(0, 0),)
    assert await client.hgetall(line.key) == {b"reserved": b"0"}
    full = plan(policy, redis_prefix, "full", at_ms=T0_MS, cost=1_000)
    admitted = await store.evaluate(full, now_ms=T0_MS + 2)
    assert admitted.refusal is None and admitted.quotas[0] == QuotaState(0, 0)

    # One of the lost requests settles late: its cost counts, the live reservation stays whole.
    settled = await store.settle(lost[0], admitted_ms=T0_MS, tokens=1, cost_micro=300, now_ms=T0_MS + 3)
    assert [s.spent for s in settled] == [300]
    assert await client.hgetall(line.key) == {b"spent": b"300", b"reserved": b"1000", b"r:full": b"1000"}
    assert await client.zrange(line.leases_key, 0, -1) == [b"full"]
