"""The gateway's side of the live tail: nothing is sent while nobody watches; a watcher's rows
arrive in batches; who watches is counted in process, or through Redis across processes."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from accounting.recorder import UsageEvent, UsageWriter
from gateway_site.runtime.live_tail import GROUP, LiveTail, tail_row
from gateway_site.runtime.usage_sink import UsageSink
from quotas.limiter import Limiter
from quotas.stores.local import LocalStore
from tests.conftest import redis_url, wait_for

EVENT = UsageEvent(
    request_id="req_1",
    client_request_id="",
    created_at=1_780_000_000.0,
    tenant_id=1,
    tenant_name="acme",
    key_id=2,
    key_prefix="sk-gw-abcdef",
    model="mock-echo",
    status=200,
    latency_ms=12.345,
    provider="mock",
    upstream_model="mock-echo",
    prompt_tokens=8,
    completion_tokens=11,
    cost_usd=Decimal("0.0000123"),
)

ROW = {
    "at": "20:26:40",
    "request_id": "req_1",
    "tenant": "acme",
    "key": "sk-gw-abcdef…",
    "endpoint": "chat.completions",
    "model": "mock-echo",
    "deployment": "mock/mock-echo",
    "status": 200,
    "latency_ms": 12.3,
    "tokens": 19,
    "cost": "$0.000012",
}


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict]] = []

    async def __call__(self, group: str, message: dict) -> None:
        self.sent.append((group, message))


def sink_with(tail: LiveTail, tmp_path) -> UsageSink:
    writer = UsageWriter(flush_seconds=60, batch_size=10, spool_path=tmp_path / "spool.jsonl")
    limiter = Limiter(LocalStore(), fail_open=True, on_alert=print)
    return UsageSink(
        writer=writer,
        limiter=lambda: limiter,
        prices=lambda: None,  # type: ignore[arg-type,return-value]
        redis_prefix="x:",
        outbox=False,
        tail=tail,
    )


def test_a_row_shows_what_the_page_lists_and_no_secret():
    assert tail_row(EVENT) == ROW


@pytest.mark.django_db(transaction=True)  # the sink's writer records the events
async def test_nothing_is_sent_while_nobody_watches(tmp_path):
    sent = Recorder()
    tail = LiveTail(redis_url="", shared=False, prefix="t:", send=sent, flush_seconds=0.01)
    sink = sink_with(tail, tmp_path)

    for _ in range(3):
        sink.emit(EVENT, admission=None, tokens=19, cost_micro=13)
    await asyncio.sleep(0.05)

    assert tail.watched is False
    assert sent.sent == []
    sink.writer.close()


@pytest.mark.django_db(transaction=True)
async def test_a_watcher_gets_the_finished_requests_in_one_batch(tmp_path):
    sent = Recorder()
    tail = LiveTail(redis_url="", shared=False, prefix="t:", send=sent, flush_seconds=0.01)
    sink = sink_with(tail, tmp_path)
    await tail.watch("chan-1")

    for _ in range(3):
        sink.emit(EVENT, admission=None, tokens=19, cost_micro=13)
    await asyncio.sleep(0.1)

    assert sent.sent == [(GROUP, {"type": "tail.rows", "rows": [ROW, ROW, ROW]})]
    await tail.unwatch("chan-1")
    assert tail.watched is False
    sink.emit(EVENT, admission=None, tokens=19, cost_micro=13)
    await asyncio.sleep(0.05)
    assert len(sent.sent) == 1
    sink.writer.close()


async def test_in_process_watchers_are_counted():
    tail = LiveTail(redis_url="", shared=False, prefix="t:", send=Recorder())

    await tail.watch("a")
    await tail.watch("b")
    await tail.unwatch("a")
    assert tail.watched is True
    await tail.unwatch("b")
    assert tail.watched is False


async def test_a_watcher_registered_in_redis_is_seen_by_every_process(redis_prefix):
    url = redis_url()
    page_side = LiveTail(redis_url=url, shared=True, prefix=redis_prefix, send=Recorder())
    other = LiveTail(redis_url=url, shared=True, prefix=redis_prefix, send=Recorder(), poll_seconds=0.05)
    other.start()
    try:
        assert other.watched is False
        await page_side.watch("chan-1")
        assert page_side.watched is True
        await asyncio.to_thread(wait_for, lambda: other.watched, timeout=5)
        await page_side.unwatch("chan-1")
        await asyncio.to_thread(wait_for, lambda: not other.watched, timeout=5)
    finally:
        other.stop()


async def test_a_watcher_that_stops_renewing_lapses(redis_prefix):
    """A process that died with a socket open stops renewing it: it lapses by itself."""
    url = redis_url()
    other = LiveTail(redis_url=url, shared=True, prefix=redis_prefix, send=Recorder(), poll_seconds=0.05)
    dying = LiveTail(redis_url=url, shared=True, prefix=redis_prefix, send=Recorder(), lease_seconds=1.0)
    await dying.watch("gone")
    other.start()
    try:
        await asyncio.to_thread(wait_for, lambda: other.watched, timeout=5)
        await asyncio.to_thread(wait_for, lambda: not other.watched, timeout=5)
    finally:
        other.stop()
