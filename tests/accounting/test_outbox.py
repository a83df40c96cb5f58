"""The Redis outbox of the usage ledger, against the real Redis and Postgres: the settlement
and the event's append share one round trip, a drain stores each event exactly once
(duplicates ignored), a dead consumer's pending entries are claimed (a live one's own at its
next drain), and Redis being
unreachable hands the event back to the caller."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from django.conf import settings
from redis.client import Monitor

from accounting.models import UsageRecord
from accounting.outbox import (
    GROUP,
    drain,
    ensure_group,
    forget_idle_consumers,
    outbox_stream,
    pending_count,
)
from accounting.recorder import UsageEvent, decode_event, encode_event, write_events
from quotas.budget import Period
from quotas.limiter import Admission, Limiter
from quotas.models import ApiKey
from quotas.policy import Plan, QuotaLine, QuotaPolicy
from quotas.stores.base import Outbox, StoreUnavailable
from quotas.stores.scripts import SETTLE
from quotas.stores.shared import RedisStore
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def event(request_id: str, key, *, prompt: int = 10, cost: str = "0.000123") -> UsageEvent:
    return UsageEvent(
        request_id=request_id,
        client_request_id="",
        created_at=time.time(),
        tenant_id=key.tenant.pk,
        tenant_name=key.tenant.name,
        key_id=key.key_id,
        key_prefix="gw-test",
        model="gpt-4o-mini",
        status=200,
        latency_ms=12.5,
        provider="fake",
        prompt_tokens=prompt,
        completion_tokens=5,
        cost_usd=Decimal(cost),
    )


@pytest.fixture
def key(make_key):
    return make_key()


@pytest.fixture
def client(redis_prefix):
    connection = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5)
    yield connection
    connection.close()


def test_an_event_survives_encoding_exactly(make_key):
    key = make_key()
    original = event("req_a", key, cost="0.0000001234567891")
    assert decode_event(encode_event(original)) == original


def test_decoding_drops_fields_a_newer_gateway_added(make_key):
    key = make_key()
    payload = encode_event(event("req_a", key))[:-1] + b',"future_field":1}'
    assert decode_event(payload).request_id == "req_a"


def _quota_plan(prefix: str, request_id: str) -> Plan:
    quota = QuotaPolicy(id=1, owner="tenant", period="lifetime", limit_usd=Decimal("10"), hard=True)
    line = QuotaLine(
        quota=quota,
        period=Period(key="lifetime", start=None, end=None),
        key=f"{prefix}q:1",
        leases_key=f"{prefix}q:1:leases",
        limit_micro=10_000_000,
        amount_micro=5_000,
        threshold_micro=None,
        expire_at_ms=0,
    )
    return Plan(
        request_id=request_id, tenant_id=1, tokens=0, lease_ms=60_000, rates=(), parallel=(), quotas=(line,)
    )


@contextmanager
def monitored(client: redis.Redis) -> Iterator[list[dict[str, Any]]]:
    """Every command the Redis server executes inside the block (MONITOR: from any client, and
    those a script ran, as client "lua"), collected until a marker echoed at its end."""
    seen: list[dict[str, Any]] = []
    marker = f"gwtest-monitor-end-{secrets.token_hex(6)}"

    def collect(monitor: Monitor) -> None:
        for command in monitor.listen():
            seen.append(command)
            if marker in command["command"]:
                return

    with client.monitor() as monitor:  # MONITOR is on once this returns
        thread = threading.Thread(target=collect, args=(monitor,))
        thread.start()
        try:
            yield seen
        finally:
            client.echo(marker)
            thread.join(10)


async def test_settlement_and_outbox_append_share_one_round_trip(redis_prefix, key, client):
    stream = outbox_stream(redis_prefix)
    name = f"gwtest-store-{secrets.token_hex(6)}"  # finds the store's connections in CLIENT LIST
    store = RedisStore(aioredis.Redis.from_url(settings.REDIS_URL, client_name=name))
    plan = _quota_plan(redis_prefix, "req_settled")
    settle_sha = client.script_load(SETTLE)  # loaded: no NOSCRIPT retry in what is counted
    failures: list[str] = []
    payload = encode_event(event("req_settled", key))
    try:
        verdict = await store.evaluate(plan)
        assert verdict.refusal is None
        with monitored(client) as seen:
            settled = await store.settle(
                plan,
                admitted_ms=verdict.now_ms,
                tokens=0,
                cost_micro=1234,
                outbox=Outbox(stream=stream, payload=payload, on_failure=lambda: failures.append("x")),
            )
        ours = {entry["addr"] for entry in client.client_list() if entry["name"] == name}
    finally:
        await store.aclose()
    assert [s.spent for s in settled] == [1234]
    assert client.hget(f"{redis_prefix}q:1", "reserved") == b"0"
    [(_, fields)] = client.xrange(stream)
    assert fields == {b"e": payload}
    assert failures == []
    # The store sent the settlement script and the append, in one pipeline (one round trip);
    # the script itself appends nothing (on a cluster the stream is another slot).
    sent = [c["command"].split(" ")[:2] for c in seen if f"{c['client_address']}:{c['client_port']}" in ours]
    assert [[word.upper(), arg] for word, arg in sent] == [["EVALSHA", settle_sha], ["XADD", stream]]
    assert store._pipeline.batches == 2  # the admission's, then the settlement's with the append
    assert [c for c in seen if c["client_type"] == "lua" and c["command"].upper().startswith("XADD")] == []


async def test_no_limits_still_appends_the_event_and_unreachable_redis_hands_it_back(
    redis_prefix, key, client
):
    stream = outbox_stream(redis_prefix)
    failed: list[str] = []

    live = Limiter(RedisStore(aioredis.Redis.from_url(settings.REDIS_URL)), fail_open=True, on_alert=print)
    outbox = Outbox(
        stream=stream, payload=encode_event(event("req_1", key)), on_failure=lambda: failed.append("1")
    )
    live.settle_soon(Admission(plan=None, admitted_ms=0), tokens=0, cost_micro=0, outbox=outbox)
    await live.aclose()
    assert client.xlen(stream) == 1
    assert failed == []

    dead_client = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    dead = Limiter(RedisStore(dead_client), fail_open=True, on_alert=print)
    outbox = Outbox(
        stream=stream, payload=encode_event(event("req_2", key)), on_failure=lambda: failed.append("2")
    )
    dead.settle_soon(None, tokens=0, cost_micro=0, outbox=outbox)
    await dead.aclose()
    assert failed == ["2"]
    assert client.xlen(stream) == 1


class _ShortReplies(aioredis.Redis):
    """A client whose pipelines answer fewer replies than commands sent (what redis-py's cluster
    pipeline was seen to do during a failover): a failure that is not a Redis error."""

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        real = super().pipeline(transaction=transaction, shard_hint=shard_hint)

        class Short:
            async def __aenter__(self) -> Short:
                return self

            async def __aexit__(self, *exc: object) -> None:
                await real.reset()

            def execute_command(self, *args: Any) -> None:
                real.execute_command(*args)

            async def execute(self, raise_on_error: bool = True) -> list[Any]:
                return list(await real.execute(raise_on_error=raise_on_error))[:-1]

        return Short()


async def test_a_client_failing_otherwise_than_redis_hands_the_event_back(redis_prefix, key, client):
    """The append's reply is cut: the store reports itself unavailable (not the client's
    ValueError) and hands the event to ``on_failure``; Redis did append it, so it is both in the
    stream and handed back, and the ledger stores it once (a request id stored is ignored)."""
    stream = outbox_stream(redis_prefix)
    failed: list[str] = []
    store = RedisStore(_ShortReplies.from_url(settings.REDIS_URL))
    outbox = Outbox(
        stream=stream, payload=encode_event(event("req_odd", key)), on_failure=lambda: failed.append("odd")
    )
    assert await store.settle(None, admitted_ms=0, tokens=0, cost_micro=0, outbox=outbox) == ()
    assert failed == ["odd"]
    assert client.xlen(stream) == 1
    with pytest.raises(StoreUnavailable, match="Redis failed less than a moment ago"):
        await store.evaluate(_quota_plan(redis_prefix, "req_next"))  # marked down, as for a Redis error
    await store.aclose()


def _add(client, stream: str, *events: UsageEvent) -> None:
    for item in events:
        client.xadd(stream, {"e": encode_event(item)})


def test_drain_stores_each_event_once_and_empties_the_stream(redis_prefix, make_key, client):
    key = make_key()
    stream = outbox_stream(redis_prefix)
    events = [event(f"req_{n:03d}", key, prompt=n) for n in range(25)]
    # At-least-once into the outbox: a lost reply makes the gateway's fallback write it too.
    _add(client, stream, *events, events[3], events[17])
    write_events([events[5]])  # already stored (by the fallback path) before the drain

    stored = drain(client, stream=stream, consumer="c1", batch_size=4, claim_idle_ms=60_000)

    assert stored == 27
    assert UsageRecord.objects.count() == 25
    assert sorted(UsageRecord.objects.values_list("prompt_tokens", flat=True)) == list(range(25))
    assert client.xlen(stream) == 0
    assert pending_count(client, stream) == 0
    assert drain(client, stream=stream, consumer="c1", batch_size=4, claim_idle_ms=60_000) == 0
    latest = max(e.created_at for e in events)
    assert ApiKey.objects.get(pk=key.key_id).last_used_at.timestamp() == pytest.approx(latest, abs=1e-3)


class _Trickling(redis.Redis):
    """The consumer's client, while requests keep finishing elsewhere: another event reaches
    the stream each time a batch is being acknowledged (at most ``extra`` in all)."""

    stream = ""
    events: list[UsageEvent] = []

    def pipeline(self, *args: Any, **kwargs: Any) -> Any:
        if self.events:
            self.xadd(self.stream, {"e": encode_event(self.events.pop(0))})
        return super().pipeline(*args, **kwargs)


def test_a_drain_takes_what_the_stream_held_and_leaves_what_arrives_meanwhile(redis_prefix, make_key):
    key = make_key()
    stream = outbox_stream(redis_prefix)
    later = [event(f"req_late_{n}", key) for n in range(5)]
    consumer = _Trickling.from_url(settings.REDIS_URL, socket_timeout=5)
    consumer.stream, consumer.events = stream, later
    _add(consumer, stream, *[event(f"req_{n}", key) for n in range(3)])

    # One batch, not full: stored; the event that arrived while it was stored is left.
    assert drain(consumer, stream=stream, consumer="c1", batch_size=100, claim_idle_ms=60_000) == 3
    assert (UsageRecord.objects.count(), consumer.xlen(stream), len(later)) == (3, 1, 4)
    assert drain(consumer, stream=stream, consumer="c1", batch_size=100, claim_idle_ms=60_000) == 1
    assert (UsageRecord.objects.count(), consumer.xlen(stream), len(later)) == (4, 1, 3)
    consumer.close()


def test_a_dead_consumers_pending_events_are_claimed_by_another(redis_prefix, make_key, client):
    key = make_key()
    stream = outbox_stream(redis_prefix)
    ensure_group(client, stream)
    _add(client, stream, *[event(f"req_{n}", key) for n in range(10)])
    # "ghost" reads six entries and dies before storing or acknowledging them.
    [(_, taken)] = client.xreadgroup(GROUP, "ghost", {stream: ">"}, count=6)
    assert len(taken) == 6
    assert pending_count(client, stream) == 6

    # Not idle long enough yet: the live consumer takes only the four new ones.
    assert drain(client, stream=stream, consumer="live", batch_size=100, claim_idle_ms=60_000) == 4
    assert UsageRecord.objects.count() == 4
    assert pending_count(client, stream) == 6

    # Time passing, by Redis's clock: every entry of "ghost" idle for the 20 ms claimed below.
    wait_for(
        lambda: all(
            e["time_since_delivered"] >= 20 for e in client.xpending_range(stream, GROUP, "-", "+", 10)
        )
    )
    assert drain(client, stream=stream, consumer="live", batch_size=4, claim_idle_ms=20) == 6
    assert sorted(UsageRecord.objects.values_list("request_id", flat=True)) == sorted(
        f"req_{n}" for n in range(10)
    )
    assert pending_count(client, stream) == 0
    assert client.xlen(stream) == 0


def test_a_consumers_own_unstored_batch_is_stored_at_its_next_drain(redis_prefix, make_key, client):
    """A drain that read a batch and could not store it (the database dropped its connection)
    leaves the entries pending on itself: its next drain stores them first, without waiting
    the claim idle time meant for dead consumers."""
    key = make_key()
    stream = outbox_stream(redis_prefix)
    ensure_group(client, stream)
    _add(client, stream, *[event(f"req_{n}", key) for n in range(10)])
    [(_, taken)] = client.xreadgroup(GROUP, "live", {stream: ">"}, count=6)  # read; the write failed
    assert len(taken) == 6

    assert drain(client, stream=stream, consumer="live", batch_size=4, claim_idle_ms=60_000) == 10
    assert sorted(UsageRecord.objects.values_list("request_id", flat=True)) == sorted(
        f"req_{n}" for n in range(10)
    )
    assert pending_count(client, stream) == 0
    assert client.xlen(stream) == 0
    assert drain(client, stream=stream, consumer="live", batch_size=4, claim_idle_ms=60_000) == 0


def test_idle_consumers_with_nothing_pending_are_forgotten(redis_prefix, make_key, client):
    key = make_key()
    stream = outbox_stream(redis_prefix)
    ensure_group(client, stream)
    _add(client, stream, *[event(f"req_{n}", key) for n in range(4)])
    # "gone" and "live" (this process) acknowledged what they read; "stuck" holds one entry.
    for name, count in (("gone", 2), ("stuck", 1), ("live", 1)):
        [(_, taken)] = client.xreadgroup(GROUP, name, {stream: ">"}, count=count)
        if name != "stuck":
            client.xack(stream, GROUP, *[entry_id for entry_id, _ in taken])
    # Time passing, by Redis's clock: every consumer idle for the 20 ms asked below.
    wait_for(lambda: all(c["idle"] >= 20 for c in client.xinfo_consumers(stream, GROUP)))

    assert forget_idle_consumers(client, stream=stream, idle_ms=60_000, keep="live") == []
    assert forget_idle_consumers(client, stream=stream, idle_ms=20, keep="live") == ["gone"]
    names = sorted(c["name"] for c in client.xinfo_consumers(stream, GROUP))
    assert names == [b"live", b"stuck"]
    assert pending_count(client, stream) == 1
    assert forget_idle_consumers(client, stream=outbox_stream(redis_prefix + "none:"), idle_ms=0) == []
