"""``/v1/messages`` under the gateway's own enforcement, through Daphne with Redis: rate tiers
and hard cost quotas admit exact counts under concurrency and spend exactly what the records
say; tenants are isolated (limits, model access, the response cache); the cache never serves a
chat entry to a Messages request; a client that leaves mid-stream is recorded once."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
import pytest

from accounting.models import UsageRecord
from quotas.budget import to_micro
from tests.e2e.conftest import quota_spend, records
from tests.e2e.messages_gateway import ANTHROPIC_ENV, ANTHROPIC_KEY, MessagesGateway, anthropic_config, cost
from tests.e2e.scrape import scrape, total
from tests.fakes.anthropic_upstream import AnthropicReply, FakeAnthropicUpstream

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MODEL = "claude-sonnet"
BODY = {"model": MODEL, "max_tokens": 100, "messages": [{"role": "user", "content": "Hi"}]}
# The fake's default usage (21 in, 5 out) at the deployment's prices.
ONE_REQUEST = cost(uncached=21, output=5)


@pytest.fixture
def upstream():
    fake = FakeAnthropicUpstream(api_key=ANTHROPIC_KEY).start()
    yield fake
    fake.stop()


def config(upstream: FakeAnthropicUpstream, tenants: str) -> str:
    return anthropic_config(upstream.base_url, model=MODEL, upstream_model="claude-sonnet-4-5", extra=tenants)


def fire(gw: MessagesGateway, count: int, *, key: str | None = None) -> list[httpx.Response]:
    """``count`` requests at once, each on its own connection."""
    barrier = threading.Barrier(count)
    headers = {"x-api-key": key or gw.key.raw, "anthropic-version": "2023-06-01"}
    with httpx.Client(
        base_url=gw.gateway.base_url, headers=headers, timeout=30, limits=httpx.Limits(max_connections=count)
    ) as client:

        def one(_: int) -> httpx.Response:
            barrier.wait()
            return client.post("/v1/messages", json=BODY)

        with ThreadPoolExecutor(count) as pool:
            return list(pool.map(one, range(count)))


def at_the_start_of_a_minute() -> None:
    """Fixed-window tiers count per minute: all requests of a test share one window."""
    into = time.time() % 60
    if into > 45:
        time.sleep(60 - into + 0.5)


def test_rate_tier_admits_exactly_its_limit_and_isolates_tenants(upstream, start_messages, make_key):
    tenants = """
tiers:
  - name: small
    algorithm: fixed_window
    requests_per_minute: 4
tenants:
  - name: acme
    tier: small
  - name: beta
"""
    gw = start_messages(config(upstream, tenants), env=ANTHROPIC_ENV)
    other = make_key("beta")
    at_the_start_of_a_minute()
    responses = fire(gw, 10)
    assert sorted(r.status_code for r in responses) == [200] * 4 + [429] * 6
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["type"] == "error"
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["request-id"] == refused.headers["x-request-id"]
    assert len(upstream.requests) == 4

    # Another tenant is not limited by acme's tier.
    assert [r.status_code for r in fire(gw, 3, key=other.raw)] == [200, 200, 200]
    rows = records(7)
    assert sorted((r.tenant_name, r.status) for r in rows) == [("acme", 200)] * 4 + [("beta", 200)] * 3
    assert {r.endpoint for r in rows} == {"messages"}
    assert len(upstream.requests) == 7
    # the metrics tell the endpoint apart, refusals included
    samples = scrape(gw.gateway.base_url)
    assert total(samples, "llm_gateway_requests_total", status="200", endpoint="messages") == 7
    assert total(samples, "llm_gateway_requests_total", status="429", endpoint="messages") == 6
    assert total(samples, "llm_gateway_requests_total") == 13


def test_hard_quota_admits_exactly_what_it_can_reserve_and_spends_exactly(upstream, start_messages):
    tenants = """
tenants:
  - name: acme
    quotas:
      - period: month
        limit_usd: "0.005"
        hard: true
"""
    gw = start_messages(config(upstream, tenants), env=ANTHROPIC_ENV)
    # Each request reserves its most: 8 prompt tokens bounded (framing and "Hi") at the input
    # price plus 100 output tokens, $0.001524; $0.005 holds 3 reservations at once.
    upstream.default = AnthropicReply(delay=1.5)
    responses = fire(gw, 8)
    assert sorted(r.status_code for r in responses) == [200] * 3 + [429] * 5
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert len(upstream.requests) == 3

    rows = records(3)
    assert [r.cost_usd for r in rows] == [ONE_REQUEST] * 3
    quota_id = gw.key.tenant.quotas.get().id
    spent, reserved = quota_spend(
        gw.gateway.env["GATEWAY_REDIS_PREFIX"], quota_id=quota_id, tenant_id=gw.key.tenant.id
    )
    assert (spent, reserved) == (3 * to_micro(ONE_REQUEST), 0)
    assert sum((r.cost_usd for r in rows), Decimal(0)) == 3 * ONE_REQUEST


def test_cache_keeps_dialects_and_tenants_apart(upstream, start_messages, make_key):
    gw = start_messages(config(upstream, ""), env=ANTHROPIC_ENV)
    cached = {"cache-control": "max-age=600"}
    chat = gw.http.post(
        "/v1/chat/completions",
        json={"model": MODEL, "max_tokens": 100, "messages": [{"role": "user", "content": "Hi"}]},
        headers=cached,
    )
    assert (chat.status_code, chat.headers["x-gateway-cache"]) == (200, "miss")
    first = gw.http.post("/v1/messages", json=BODY, headers=cached)
    assert (first.headers["x-gateway-cache"], first.json()["type"]) == ("miss", "message")
    assert len(upstream.requests) == 2  # the chat entry did not answer the Messages request

    again = gw.http.post("/v1/messages", json=BODY, headers=cached)
    assert again.headers["x-gateway-cache"] == "hit"
    assert again.json()["content"] == [{"type": "text", "text": "Hello from Claude!"}]
    assert again.json()["usage"]["output_tokens"] == 5
    with gw.http.stream("POST", "/v1/messages", json={**BODY, "stream": True}, headers=cached) as replayed:
        assert replayed.headers["x-gateway-cache"] == "hit"
        streamed = replayed.read().decode()
    assert streamed.startswith("event: message_start\n") and streamed.endswith(
        'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )
    assert len(upstream.requests) == 2

    other = make_key("beta")
    theirs = httpx.post(
        f"{gw.gateway.base_url}/v1/messages",
        json=BODY,
        headers={"x-api-key": other.raw, **cached},
        timeout=30,
    )
    assert theirs.headers["x-gateway-cache"] == "miss"  # another tenant's entry is not theirs
    assert len(upstream.requests) == 3

    rows = records(5)
    assert [(r.endpoint, r.tenant_name, r.cache_hit, r.streamed) for r in rows] == [
        ("chat.completions", "acme", False, False),
        ("messages", "acme", False, False),
        ("messages", "acme", True, False),
        ("messages", "acme", True, True),
        ("messages", "beta", False, False),
    ]
    hits = [r for r in rows if r.cache_hit]
    assert [(r.cost_usd, r.cost_saved_usd) for r in hits] == [(Decimal(0), ONE_REQUEST)] * 2


def test_a_client_gone_mid_stream_is_recorded_once(upstream, start_messages):
    gw = start_messages(config(upstream, ""), env=ANTHROPIC_ENV)
    upstream.enqueue(AnthropicReply(text=" ".join(["word"] * 40), event_delay=0.05))
    with gw.http.stream("POST", "/v1/messages", json={**BODY, "stream": True}) as response:
        seen = b""
        for chunk in response.iter_raw():
            seen += chunk
            if seen.count(b"text_delta") >= 3:
                break  # the client leaves
    [row] = records(1)
    assert (row.endpoint, row.status, row.client_disconnected, row.streamed) == ("messages", 499, True, True)
    assert row.completion_tokens >= 3
    time.sleep(1.0)  # the rest of the upstream stream, had it been relayed, would be over by now
    assert UsageRecord.objects.count() == 1
