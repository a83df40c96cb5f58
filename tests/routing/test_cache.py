"""The response cache's pure parts (key, Cache-Control, plan, L1 LRU with an injected clock) and
its two levels against the real Redis under this test's prefix, including a Redis that is down."""

from __future__ import annotations

import logging
import socket

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from providers.types import CachePolicy, Usage
from routing.cache import (
    CacheControl,
    CachedAnswer,
    LocalCache,
    ResponseCache,
    cache_key,
    completed_normally,
    may_read,
    parse_cache_control,
    plan_caching,
)
from tests.conftest import redis_url

BODY = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "Say hello"}],
    "temperature": 0.2,
}
USAGE = Usage(
    prompt_tokens=19, completion_tokens=3, cached_tokens=4, reasoning_tokens=1, cache_write_tokens=2
)


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def key(body: dict[str, object], *, tenant_id: int = 1, strategy: str = "full_request") -> str:
    return cache_key(body, tenant_id=tenant_id, model="gpt-4o-mini", strategy=strategy)


def answer(body: bytes = b"{}", *, stored_at: float = 1_000.0, ttl: float = 60.0) -> CachedAnswer:
    return CachedAnswer(body, USAGE, 7, stored_at=stored_at, expires_at=stored_at + ttl)


# --- key --------------------------------------------------------------------------------------


def test_same_request_gives_the_same_key_whatever_the_field_order():
    reordered = {"temperature": 0.2, "messages": BODY["messages"], "model": "gpt-4o-mini"}
    assert key(BODY) == key(dict(BODY)) == key(reordered)
    assert len(key(BODY)) == 64
    int(key(BODY), 16)


def test_tenant_and_model_change_the_key():
    assert key(BODY, tenant_id=1) != key(BODY, tenant_id=2)
    other_model = cache_key(BODY, tenant_id=1, model="gpt-4o", strategy="full_request")
    assert other_model != key(BODY)


def test_transport_fields_do_not_change_the_key():
    streamed = {**BODY, "stream": True, "stream_options": {"include_usage": True}, "user": "u-1"}
    tagged = {**BODY, "metadata": {"a": "b"}, "store": True, "safety_identifier": "s", "service_tier": "auto"}
    assert key(streamed) == key(tagged) == key(BODY)
    assert key(streamed, strategy="messages_only") == key(BODY, strategy="messages_only")


def test_an_answer_changing_field_changes_the_full_request_key_only():
    hotter = {**BODY, "temperature": 0.9}
    assert key(hotter) != key(BODY)
    assert key(hotter, strategy="messages_only") == key(BODY, strategy="messages_only")
    # messages and tools are what messages_only covers.
    other_text = {**BODY, "messages": [{"role": "user", "content": "Say bye"}]}
    with_tools = {**BODY, "tools": [{"type": "function", "function": {"name": "f"}}]}
    assert key(other_text, strategy="messages_only") != key(BODY, strategy="messages_only")
    assert key(with_tools, strategy="messages_only") != key(BODY, strategy="messages_only")
    # The strategies never share entries.
    assert key(BODY, strategy="messages_only") != key(BODY)


def test_a_messages_api_system_prompt_is_part_of_the_messages_only_key():
    """The Messages API keeps its system prompt beside the messages: two requests that differ
    only there are different prompts."""
    terse = {"model": "claude", "system": "Be terse.", "messages": [{"role": "user", "content": "Hi"}]}
    verbose = {**terse, "system": [{"type": "text", "text": "Be verbose."}]}
    messages_key = {"tenant_id": 1, "model": "claude", "strategy": "messages_only", "dialect": "messages"}
    assert cache_key(terse, **messages_key) != cache_key(verbose, **messages_key)
    assert cache_key(terse, **messages_key) != cache_key(
        terse, **{**messages_key, "dialect": "chat.completions"}
    )


# --- Cache-Control and the plan ---------------------------------------------------------------


def test_cache_control_directives_are_parsed():
    assert parse_cache_control(None) == CacheControl()
    assert parse_cache_control("No-Cache") == CacheControl(no_cache=True)
    assert parse_cache_control("no-store, max-age=60") == CacheControl(no_store=True, max_age=60)
    assert parse_cache_control('max-age="30", private') == CacheControl(max_age=30)
    assert parse_cache_control("max-age=-5, max-age=x") == CacheControl()


POLICY = CachePolicy(300)


def plan(body=BODY, *, policy: CachePolicy | None = POLICY, header: str | None = None, cap: int = 3600):
    return plan_caching(
        body,
        policy=policy,
        control=parse_cache_control(header),
        tenant_id=1,
        model="gpt-4o-mini",
        max_request_ttl=cap,
    )


def test_a_model_policy_reads_and_stores_for_its_ttl():
    p = plan()
    assert p is not None
    assert (p.key, p.read, p.ttl_seconds, p.max_age) == (key(BODY), True, 300, None)
    messages_only = plan(policy=CachePolicy(300, key="messages_only"))
    assert messages_only is not None and messages_only.key == key(BODY, strategy="messages_only")


def test_no_cache_skips_the_read_and_no_store_bypasses():
    p = plan(header="no-cache")
    assert p is not None and (p.read, p.ttl_seconds) == (False, 300)
    zero = plan(header="max-age=0")
    assert zero is not None and (zero.read, zero.ttl_seconds) == (False, 300)
    assert plan(header="no-store") is None
    assert plan(header="no-store", policy=None) is None


def test_without_a_policy_only_a_max_age_opts_in_capped():
    assert plan(policy=None) is None
    assert plan(policy=None, header="no-cache") is None
    assert plan(policy=None, header="max-age=0") is None
    p = plan(policy=None, header="max-age=60")
    assert p is not None and (p.read, p.ttl_seconds, p.max_age) == (True, 60, 60)
    capped = plan(policy=None, header="max-age=99999", cap=600)
    assert capped is not None and capped.ttl_seconds == 600
    assert plan(policy=None, header="max-age=60", cap=0) is None  # per-request opt-in disabled


def test_several_choices_are_not_cached():
    assert plan({**BODY, "n": 2}) is None
    assert plan({**BODY, "n": 1}) is not None


def test_may_read_is_exactly_whether_the_plan_reads():
    headers = (
        None,
        "no-cache",
        "no-store",
        "max-age=0",
        "max-age=60",
        "max-age=99999",
        "no-cache, max-age=60",
    )
    bodies = (BODY, {**BODY, "n": 2}, {**BODY, "n": 1})
    cases = [
        (body, policy, header, cap)
        for body in bodies
        for policy in (POLICY, None)
        for header in headers
        for cap in (3600, 0)
    ]
    reads = []
    for body, policy, header, cap in cases:
        p = plan(body, policy=policy, header=header, cap=cap)
        expected = p is not None and p.read
        control = parse_cache_control(header)
        assert may_read(body, policy=policy, control=control, max_request_ttl=cap) is expected, (body, header)
        reads.append(expected)
    assert (reads.count(True), len(reads)) == (16, 84)  # both outcomes are covered


def test_only_single_choice_answers_that_finished_normally_are_complete():
    def body(*reasons: str | None) -> bytes:
        choices = [{"index": i, "message": {}, "finish_reason": r} for i, r in enumerate(reasons)]
        return orjson.dumps({"choices": choices})

    assert [completed_normally(body(r)) for r in ("stop", "length", "tool_calls")] == [True] * 3
    assert completed_normally(body("content_filter")) is False
    assert completed_normally(body(None)) is False
    assert completed_normally(body("stop", "stop")) is False
    assert completed_normally(b"not json") is False


def test_an_answer_survives_encoding():
    original = answer(b'{"a":"line\\nbreak"}')
    assert CachedAnswer.decode(original.encode()) == original
    assert CachedAnswer.decode(b"garbage") is None


# --- L1 -----------------------------------------------------------------------------------------


def test_the_least_recently_used_entry_is_evicted_past_the_entry_bound():
    local = LocalCache(max_entries=2, max_bytes=10_000, clock=Clock())
    local.put("a", answer())
    local.put("b", answer())
    assert local.get("a") is not None  # "b" is now the least recently used
    local.put("c", answer())
    assert (local.get("a") is not None, local.get("b"), local.get("c") is not None) == (True, None, True)
    assert len(local) == 2


def test_entries_are_evicted_past_the_byte_bound():
    one = answer(b"x" * 300)  # size 500
    local = LocalCache(max_entries=100, max_bytes=1_200, clock=Clock())
    local.put("a", one)
    local.put("b", one)
    assert local.total_bytes == 1_000
    local.put("c", one)
    assert (local.get("a"), len(local), local.total_bytes) == (None, 2, 1_000)
    local.put("huge", answer(b"x" * 1_001))  # larger than the whole cache: not kept
    assert (local.get("huge"), len(local)) == (None, 2)
    local.put("b", answer(b"y"))  # a replacement frees the old entry's bytes
    assert local.total_bytes == 500 + 201


def test_an_entry_expires_at_its_ttl():
    clock = Clock(1_000.0)
    local = LocalCache(max_entries=10, max_bytes=10_000, clock=clock)
    local.put("a", answer(stored_at=1_000.0, ttl=5.0))
    clock.now = 1_004.999
    assert local.get("a") is not None
    clock.now = 1_005.0
    assert local.get("a") is None
    assert (len(local), local.total_bytes) == (0, 0)


# --- L1 over L2 (real Redis) ------------------------------------------------------------------------


def new_cache(url: str, prefix: str, clock: Clock) -> ResponseCache:
    client = aioredis.Redis.from_url(
        url, socket_timeout=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    local = LocalCache(max_entries=10, max_bytes=100_000, clock=clock)
    return ResponseCache(local, client=client, prefix=prefix, timeout=1.0, clock=clock)


async def test_l2_holds_the_entry_for_its_ttl_and_feeds_another_l1(redis_prefix):
    clock = Clock(1_000.0)
    writer, reader = new_cache(redis_url(), redis_prefix, clock), new_cache(redis_url(), redis_prefix, clock)
    try:
        writer.put("k1", body=b'{"id":"x"}', usage=USAGE, deployment_id=7, ttl_seconds=30)
        await writer.flush()
        raw = aioredis.Redis.from_url(redis_url())
        assert await raw.pttl(f"{redis_prefix}cache:k1") in range(29_000, 30_001)
        await raw.aclose()

        assert (await writer.get("k1")).level == "l1"
        hit = await reader.get("k1")
        assert hit is not None and hit.level == "l2"
        assert (hit.answer.body, hit.answer.usage, hit.answer.deployment_id) == (b'{"id":"x"}', USAGE, 7)
        assert (await reader.get("k1")).level == "l1"  # kept in the reader's L1
        assert await reader.get("other") is None

        clock.now = 1_010.0
        assert await reader.get("k1", max_age=5) is None  # older than the request accepts
        assert (await reader.get("k1", max_age=10)) is not None
        clock.now = 1_030.0
        assert await reader.get("k1") is None  # expired in L1; L2 holds nothing newer
    finally:
        await writer.aclose()
        await reader.aclose()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_redis_that_is_down_is_a_miss_and_a_dropped_write_logged_once(redis_prefix, caplog):
    clock = Clock()
    cache = new_cache(f"redis://127.0.0.1:{closed_port()}/0", redis_prefix, clock)
    caplog.set_level(logging.WARNING, logger="routing.cache")
    try:
        assert await cache.get("k1") is None
        cache.put("k1", body=b"{}", usage=USAGE, deployment_id=7, ttl_seconds=30)
        await cache.flush()
        assert await cache.get("k2") is None
        assert (await cache.get("k1")).level == "l1"  # L1 still works
    finally:
        await cache.aclose()
    warnings = [r for r in caplog.records if r.name == "routing.cache"]
    assert len(warnings) == 1
    assert "response cache read on Redis failed" in warnings[0].getMessage()
