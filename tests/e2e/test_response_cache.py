"""The response cache end to end: a Daphne gateway (two for the shared L2) in front of the fake
OpenAI upstream, with Redis under the test's prefix. Asserts how many calls reached the
upstream, the cache headers, the answers (raw and through the official SDK, streamed) and the
usage records of hits."""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest
import redis
from django.conf import settings

from tests.conftest import wait_for
from tests.e2e.conftest import MODEL, UPSTREAM_KEY_ENV, Proxy, expected_cost, records
from tests.fakes.openai_upstream import FakeToolCall, FakeUsage, Reply

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CACHED = "gpt-cached"
SHORT = "gpt-short-lived"
CACHED_YAML = f"""
models:
  - name: {CACHED}
    cache: {{ttl_seconds: 300, key: full_request}}
    deployments:
      - provider: fake-openai
        model: gpt-4o-mini-upstream
        input_per_million: "0.15"
        output_per_million: "0.60"
        cached_input_per_million: "0.075"
  - name: {SHORT}
    cache: {{ttl_seconds: 1, key: messages_only}}
    deployments:
      - provider: fake-openai
        model: gpt-4o-mini-upstream
        free: true
"""
ANSWER = Reply(content="Cached hello there", usage=FakeUsage(19, 6, cached_tokens=4))


def start(start_proxy) -> Proxy:
    proxy: Proxy = start_proxy(extra_yaml=CACHED_YAML)
    proxy.upstream.default = ANSWER
    return proxy


def body(
    proxy: Proxy, model: str = CACHED, content: str = "Say hello", **fields: object
) -> dict[str, object]:
    return proxy.chat_body(content, **{**fields, "model": model})


def cache_keys(prefix: str) -> list[bytes]:
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        return list(client.scan_iter(match=f"{prefix}cache:*"))
    finally:
        client.close()


def key_exists(key: bytes) -> bool:
    """EXISTS: a key past its time to live counts as gone (Redis expires it on access)."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        return bool(client.exists(key))
    finally:
        client.close()


def test_same_request_twice_is_one_upstream_call_and_the_hit_is_recorded_at_zero_cost(start_proxy):
    proxy = start(start_proxy)

    first = proxy.http.post("/v1/chat/completions", json=body(proxy))
    # ``user`` does not change the key; ``temperature`` does.
    second = proxy.http.post("/v1/chat/completions", json=body(proxy, user="u-9"))
    third = proxy.http.post("/v1/chat/completions", json=body(proxy, temperature=0.5))

    assert [r.status_code for r in (first, second, third)] == [200, 200, 200]
    assert len(proxy.upstream.requests) == 2
    assert [r.headers["x-gateway-cache"] for r in (first, second, third)] == ["miss", "hit", "miss"]
    assert [r.headers["x-gateway-attempts"] for r in (first, second, third)] == ["1", "0", "1"]
    assert int(second.headers["age"]) in (0, 1)
    assert "age" not in first.headers
    assert second.headers["x-gateway-deployment"] == first.headers["x-gateway-deployment"]
    assert second.content == first.content  # the stored answer, byte for byte
    assert second.json()["choices"][0]["message"]["content"] == "Cached hello there"

    miss, hit, _ = records(3)
    saved = expected_cost(19, 6, cached=4)
    assert saved == Decimal("0.00000615")
    assert (miss.cache_hit, miss.cost_usd, miss.cost_saved_usd) == (False, saved, Decimal(0))
    assert (hit.cache_hit, hit.cost_usd, hit.cost_saved_usd) == (True, Decimal(0), saved)
    assert (hit.prompt_tokens, hit.completion_tokens, hit.cached_tokens) == (19, 6, 4)
    assert (hit.deployment_id, hit.model, hit.status, hit.streamed) == (
        miss.deployment_id,
        CACHED,
        200,
        False,
    )
    assert hit.upstream_latency_ms == 0
    assert hit.request_id != miss.request_id


def test_another_tenant_with_the_same_request_is_not_served_another_tenants_answer(start_proxy, make_key):
    other = make_key("globex")  # issued before the gateway starts: in its first snapshot
    proxy = start(start_proxy)

    mine = proxy.http.post("/v1/chat/completions", json=body(proxy))
    theirs = proxy.http.post(
        "/v1/chat/completions", json=body(proxy), headers={"Authorization": f"Bearer {other.raw}"}
    )
    theirs_again = proxy.http.post(
        "/v1/chat/completions", json=body(proxy), headers={"Authorization": f"Bearer {other.raw}"}
    )

    assert len(proxy.upstream.requests) == 2
    assert [r.headers["x-gateway-cache"] for r in (mine, theirs, theirs_again)] == ["miss", "miss", "hit"]
    rows = records(3)
    assert [(r.tenant_name, r.cache_hit) for r in rows] == [
        ("acme", False),
        ("globex", False),
        ("globex", True),
    ]


def test_no_cache_skips_the_read_but_stores_and_no_store_stores_nothing(start_proxy, redis_prefix):
    proxy = start(start_proxy)
    post = proxy.http.post

    plain = post("/v1/chat/completions", json=body(proxy))
    no_cache = post("/v1/chat/completions", json=body(proxy), headers={"Cache-Control": "no-cache"})
    after = post("/v1/chat/completions", json=body(proxy))
    assert len(proxy.upstream.requests) == 2
    assert [r.headers["x-gateway-cache"] for r in (plain, no_cache, after)] == ["miss", "bypass", "hit"]
    wait_for(lambda: len(cache_keys(redis_prefix)) == 1)

    proxy.upstream.default = Reply(content="Not for keeping", usage=FakeUsage(5, 3))
    no_store = post(
        "/v1/chat/completions", json=body(proxy, content="Other"), headers={"Cache-Control": "no-store"}
    )
    fresh = post("/v1/chat/completions", json=body(proxy, content="Other"))
    assert len(proxy.upstream.requests) == 4  # nothing was kept for "Other" by the no-store request
    assert [r.headers["x-gateway-cache"] for r in (no_store, fresh)] == ["bypass", "miss"]
    rows = records(5)
    assert [r.cache_hit for r in rows] == [False, False, True, False, False]


def test_an_entry_expires_after_its_ttl(start_proxy, redis_prefix):
    proxy = start(start_proxy)

    first = proxy.http.post("/v1/chat/completions", json=body(proxy, SHORT))
    # messages_only: another temperature is the same entry.
    hit = proxy.http.post("/v1/chat/completions", json=body(proxy, SHORT, temperature=1.5))
    wait_for(lambda: len(cache_keys(redis_prefix)) == 1)
    [key] = cache_keys(redis_prefix)
    # Time passing: the one-second TTL, until Redis drops the L2 entry. It was written after the
    # L1 entry (both stamped by the same host's clock), so that one has expired too.
    wait_for(lambda: not key_exists(key), timeout=5)
    expired = proxy.http.post("/v1/chat/completions", json=body(proxy, SHORT))

    assert [r.headers["x-gateway-cache"] for r in (first, hit, expired)] == ["miss", "hit", "miss"]
    assert len(proxy.upstream.requests) == 2


def test_a_cached_answer_is_streamed_to_the_sdk_and_a_streamed_answer_is_cached(start_proxy):
    proxy = start(start_proxy)
    proxy.http.post("/v1/chat/completions", json=body(proxy))  # stored, not streamed

    raw = proxy.client.chat.completions.with_raw_response.create(
        model=CACHED,
        messages=[{"role": "user", "content": "Say hello"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(raw.parse())
    without_usage = list(
        proxy.client.chat.completions.create(
            model=CACHED, messages=[{"role": "user", "content": "Say hello"}], stream=True
        )
    )

    assert raw.headers["x-gateway-cache"] == "hit"
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Cached hello there"
    assert [c.choices[0].finish_reason for c in chunks if c.choices] == [None, None, "stop"]
    assert chunks[-1].choices == []
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (19, 6)
    assert len(without_usage) == 3 and all(c.usage is None for c in without_usage)
    assert len(proxy.upstream.requests) == 1

    # A streamed miss is stored: the next request, streamed or not, is a hit.
    proxy.upstream.default = Reply(content="Streamed words to keep", usage=FakeUsage(7, 4))
    streamed = proxy.client.chat.completions.create(
        model=CACHED, messages=[{"role": "user", "content": "Stream it"}], stream=True
    )
    assert (
        "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == "Streamed words to keep"
    )
    again = proxy.client.chat.completions.with_raw_response.create(
        model=CACHED, messages=[{"role": "user", "content": "Stream it"}]
    )
    assert again.headers["x-gateway-cache"] == "hit"
    completion = again.parse()
    assert (completion.choices[0].message.content, completion.choices[0].finish_reason) == (
        "Streamed words to keep",
        "stop",
    )
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (7, 4)
    assert len(proxy.upstream.requests) == 2

    rows = records(5)
    assert [(r.streamed, r.cache_hit) for r in rows] == [
        (False, False),
        (True, True),
        (True, True),
        (True, False),
        (False, True),
    ]
    assert rows[1].cost_saved_usd == expected_cost(19, 6, cached=4)
    assert rows[1].ttft_ms is not None
    assert rows[4].cost_saved_usd == expected_cost(7, 4)


def test_streamed_tool_calls_are_cached_and_replayed(start_proxy):
    proxy = start(start_proxy)
    call = FakeToolCall(id="call_1", name="get_weather", arguments='{"city": "Oslo"}')
    proxy.upstream.default = Reply(content=None, tool_calls=(call,), usage=FakeUsage(30, 12))
    request = {"model": CACHED, "messages": [{"role": "user", "content": "Weather?"}], "stream": True}

    first = list(proxy.client.chat.completions.create(**request))
    again = proxy.client.chat.completions.create(**{**request, "stream": False})

    assert first[-1].choices[0].finish_reason == "tool_calls"
    assert len(proxy.upstream.requests) == 1
    [tool_call] = again.choices[0].message.tool_calls
    assert (tool_call.id, tool_call.function.name, tool_call.function.arguments) == (
        "call_1",
        "get_weather",
        '{"city": "Oslo"}',
    )
    assert again.choices[0].finish_reason == "tool_calls"


def test_the_l2_is_shared_by_instances_with_the_same_redis_prefix(start_proxy, gateway_factory, redis_prefix):
    proxy = start(start_proxy)
    other = gateway_factory(**{UPSTREAM_KEY_ENV: proxy.upstream_key})

    stored = proxy.http.post("/v1/chat/completions", json=body(proxy))
    wait_for(lambda: len(cache_keys(redis_prefix)) == 1)
    client = openai.OpenAI(base_url=f"{other.base_url}/v1", api_key=proxy.key.raw, max_retries=0, timeout=30)
    try:
        served = client.chat.completions.with_raw_response.create(
            model=CACHED, messages=[{"role": "user", "content": "Say hello"}]
        )
    finally:
        client.close()

    assert (stored.headers["x-gateway-cache"], served.headers["x-gateway-cache"]) == ("miss", "hit")
    assert served.parse().choices[0].message.content == "Cached hello there"
    assert len(proxy.upstream.requests) == 1
    assert [r.cache_hit for r in records(2)] == [False, True]


def test_a_model_without_a_policy_is_cached_only_when_the_request_asks(start_proxy):
    proxy = start(start_proxy)
    post = proxy.http.post

    plain = [post("/v1/chat/completions", json=body(proxy, MODEL)) for _ in range(2)]
    asked = [
        post("/v1/chat/completions", json=body(proxy, MODEL), headers={"Cache-Control": "max-age=60"})
        for _ in range(2)
    ]

    assert [r.headers["x-gateway-cache"] for r in (*plain, *asked)] == ["bypass", "bypass", "miss", "hit"]
    assert len(proxy.upstream.requests) == 3
    assert [r.cache_hit for r in records(4)] == [False, False, False, True]
