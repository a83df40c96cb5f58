"""Calls of one loop turn share one pipeline; settlements linger for the next admission's; a
script Redis lost is loaded again and the call sent again; a failed batch fails every call.
Real Redis."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from redis.exceptions import ResponseError

from quotas.stores.autopipeline import AutoPipeline, Script
from quotas.stores.shared import create_client
from tests.conftest import redis_url
from tests.e2e.conftest import closed_port


def script(source: str) -> Script:
    return Script(source=source, sha=hashlib.sha1(source.encode()).hexdigest())


ECHO = script("return ARGV[1]")
FAILS = script("return redis.error_reply('no such thing')")


@pytest.fixture
async def client():
    redis = create_client(redis_url(), timeout=2)
    await redis.script_load(ECHO.source)
    await redis.script_load(FAILS.source)
    yield redis
    await redis.aclose()


async def test_calls_of_one_turn_go_in_one_pipeline_each_with_its_own_reply(client):
    pipeline = AutoPipeline(client)
    replies = await asyncio.gather(*(pipeline.call(ECHO, [], [f"r{i}"]) for i in range(5)))
    assert (replies, pipeline.batches) == ([b"r0", b"r1", b"r2", b"r3", b"r4"], 1)
    assert await pipeline.call(ECHO, [], ["next"]) == b"next"
    assert pipeline.batches == 2


async def test_a_settlement_rides_with_the_next_admission_within_its_linger(client):
    pipeline = AutoPipeline(client, linger=0.5)
    settled = asyncio.ensure_future(pipeline.call(ECHO, [], ["settle"], urgent=False))
    await asyncio.sleep(0.01)
    assert not settled.done() and pipeline.batches == 0
    assert await pipeline.call(ECHO, [], ["admit"]) == b"admit"
    assert (await settled, pipeline.batches) == (b"settle", 1)


async def test_a_settlement_alone_goes_after_its_linger(client):
    pipeline = AutoPipeline(client, linger=0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await pipeline.call(ECHO, [], ["alone"], urgent=False) == b"alone"
    assert loop.time() - started >= 0.05
    assert pipeline.batches == 1


async def test_a_script_redis_lost_is_loaded_and_the_call_sent_again(client):
    await client.script_flush()
    pipeline = AutoPipeline(client)
    replies = await asyncio.gather(pipeline.call(ECHO, [], ["a"]), pipeline.call(ECHO, [], ["b"]))
    assert replies == [b"a", b"b"]
    assert await client.script_exists(ECHO.sha) == [True]


async def test_an_error_reply_fails_only_its_own_call(client):
    pipeline = AutoPipeline(client)
    good, bad = await asyncio.gather(
        pipeline.call(ECHO, [], ["fine"]), pipeline.call(FAILS, [], []), return_exceptions=True
    )
    assert good == b"fine"
    assert isinstance(bad, ResponseError) and "no such thing" in str(bad)


async def test_an_unreachable_redis_fails_every_call_of_the_batch():
    dead = create_client(f"redis://127.0.0.1:{closed_port()}/0", timeout=0.5)
    pipeline = AutoPipeline(dead)
    results = await asyncio.gather(
        pipeline.call(ECHO, [], ["a"]), pipeline.call(ECHO, [], ["b"], urgent=False), return_exceptions=True
    )
    assert [type(r).__name__ for r in results] == ["ConnectionError", "ConnectionError"]
    await dead.aclose()
