"""``/metrics`` end to end: exact counter values after known traffic through a real gateway and
the fake OpenAI upstream, bounded labels, and the endpoint's protection."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import MODEL, PROVIDER, UPSTREAM_MODEL, closed_port, expected_cost
from tests.e2e.scrape import scrape, total, value
from tests.fakes.openai_upstream import ErrorReply, FakeUsage, Reply

pytestmark = [pytest.mark.e2e]

DEPLOYMENT = f"{PROVIDER}/{UPSTREAM_MODEL}"
ALLOWED_LABELS = {
    "provider",
    "model",
    "status",
    "endpoint",
    "type",
    "deployment",
    "cache_type",
    "component",
    "reason",
    "tenant",
    "le",
}


def test_counters_after_three_successes_one_upstream_error_and_three_refusals(start_proxy, make_key):
    proxy = start_proxy()
    narrow = make_key("acme", name="narrow", models=["some-other-model"])
    proxy.upstream.enqueue(
        *[Reply(usage=FakeUsage(10, 5, cached_tokens=2)) for _ in range(3)],
        ErrorReply(400, "Bad request.", param="messages"),
    )
    statuses = [proxy.http.post("/v1/chat/completions", json=proxy.chat_body()).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 400]
    unauthenticated = httpx.post(f"{proxy.gateway.base_url}/v1/chat/completions", json=proxy.chat_body())
    assert unauthenticated.status_code == 401
    unknown = proxy.http.post("/v1/chat/completions", json={**proxy.chat_body(), "model": "no-such-model"})
    assert unknown.status_code == 404
    denied = httpx.post(
        f"{proxy.gateway.base_url}/v1/chat/completions",
        json=proxy.chat_body(),
        headers={"Authorization": f"Bearer {narrow.raw}"},
    )
    assert denied.status_code == 404  # a model the key may not use is answered as unknown

    s = scrape(proxy.gateway.base_url)
    assert (
        value(
            s,
            "llm_gateway_requests_total",
            provider=PROVIDER,
            model=MODEL,
            status="200",
            endpoint="chat.completions",
        )
        == 3
    )
    assert (
        value(
            s,
            "llm_gateway_requests_total",
            provider=PROVIDER,
            model=MODEL,
            status="400",
            endpoint="chat.completions",
        )
        == 1
    )
    assert (
        value(
            s,
            "llm_gateway_requests_total",
            provider="none",
            model="",
            status="401",
            endpoint="chat.completions",
        )
        == 1
    )
    # an unknown model and one the key may not use look alike, label included
    assert (
        value(
            s,
            "llm_gateway_requests_total",
            provider="none",
            model="",
            status="404",
            endpoint="chat.completions",
        )
        == 2
    )
    assert (
        value(
            s,
            "llm_gateway_requests_total",
            provider="none",
            model=MODEL,
            status="404",
            endpoint="chat.completions",
        )
        == 0
    )
    assert total(s, "llm_gateway_requests_total") == 7  # nothing counted twice
    tokens = {
        kind: value(s, "llm_gateway_tokens_total", provider=PROVIDER, model=MODEL, type=kind)
        for kind in ("prompt", "completion", "cached", "reasoning")
    }
    assert tokens == {"prompt": 30, "completion": 15, "cached": 6, "reasoning": 0}
    cost = value(s, "llm_gateway_cost_dollars_total", provider=PROVIDER, model=MODEL)
    assert cost == pytest.approx(float(3 * expected_cost(10, 5, 2)), rel=1e-9)
    assert value(s, "llm_gateway_request_duration_seconds_count", provider=PROVIDER, model=MODEL) == 4
    assert value(s, "llm_gateway_overhead_seconds_count") == 4
    assert (
        value(
            s, "llm_gateway_upstream_requests_total", provider=PROVIDER, deployment=DEPLOYMENT, status="200"
        )
        == 3
    )
    assert (
        value(
            s, "llm_gateway_upstream_requests_total", provider=PROVIDER, deployment=DEPLOYMENT, status="400"
        )
        == 1
    )
    assert (
        value(
            s, "llm_gateway_upstream_request_duration_seconds_count", provider=PROVIDER, deployment=DEPLOYMENT
        )
        == 4
    )
    assert total(s, "llm_gateway_upstream_retries_total") == 0
    assert total(s, "llm_gateway_fallbacks_total") == 0
    assert value(s, "llm_gateway_active_requests") == 0
    assert total(s, "llm_gateway_time_to_first_token_seconds_count") == 0  # no stream yet
    assert value(s, "llm_gateway_breaker_state", provider=PROVIDER, deployment=DEPLOYMENT) == 0
    assert value(s, "llm_gateway_provider_health", provider=PROVIDER) == 1
    for cache_type in ("l1", "l2"):
        assert ("llm_gateway_cache_hits_total", frozenset({("cache_type", cache_type)})) in s
        assert value(s, "llm_gateway_cache_hits_total", cache_type=cache_type) == 0
        assert value(s, "llm_gateway_cache_misses_total", cache_type=cache_type) == 0


def test_retry_after_a_503_is_counted_per_deployment(start_proxy):
    proxy = start_proxy(GATEWAY_RETRIES="2", GATEWAY_RETRY_INITIAL_SECONDS="0.01")
    proxy.upstream.enqueue(ErrorReply(503, "Overloaded.", type="server_error"), Reply())
    response = proxy.http.post("/v1/chat/completions", json=proxy.chat_body())
    assert response.status_code == 200
    assert len(proxy.upstream.requests) == 2

    s = scrape(proxy.gateway.base_url)
    assert (
        value(
            s,
            "llm_gateway_requests_total",
            provider=PROVIDER,
            model=MODEL,
            status="200",
            endpoint="chat.completions",
        )
        == 1
    )
    assert total(s, "llm_gateway_requests_total") == 1
    upstream = {labels: v for (name, labels), v in s.items() if name == "llm_gateway_upstream_requests_total"}
    # A try's status is what the upstream's answer maps to for the client: a 503 is a 502.
    assert upstream == {
        frozenset({("provider", PROVIDER), ("deployment", DEPLOYMENT), ("status", "502")}): 1,
        frozenset({("provider", PROVIDER), ("deployment", DEPLOYMENT), ("status", "200")}): 1,
    }
    assert value(s, "llm_gateway_upstream_retries_total", provider=PROVIDER, deployment=DEPLOYMENT) == 1


RATE_TIER = """
tiers:
  - name: two-a-minute
    algorithm: fixed_window
    requests_per_minute: 2
tenants:
  - name: acme
    tier: two-a-minute
"""


def test_streams_time_to_first_token_and_rate_limit_refusals(start_proxy):
    proxy = start_proxy(extra_yaml=RATE_TIER, REDIS_URL="")
    body = proxy.chat_body(stream=True, stream_options={"include_usage": True})
    with proxy.http.stream("POST", "/v1/chat/completions", json=body) as first:
        assert first.status_code == 200
        first.read()
    with proxy.http.stream("POST", "/v1/chat/completions", json=body) as second:
        assert second.status_code == 200
        second.read()
    refused = proxy.http.post("/v1/chat/completions", json=body)
    assert refused.status_code == 429

    s = scrape(proxy.gateway.base_url)
    assert value(s, "llm_gateway_time_to_first_token_seconds_count", provider=PROVIDER, model=MODEL) == 2
    assert (
        value(
            s,
            "llm_gateway_requests_total",
            provider=PROVIDER,
            model=MODEL,
            status="200",
            endpoint="chat.completions",
        )
        == 2
    )
    assert (
        value(
            s,
            "llm_gateway_requests_total",
            provider="none",
            model=MODEL,
            status="429",
            endpoint="chat.completions",
        )
        == 1
    )
    assert value(s, "llm_gateway_rate_limit_exceeded_total", tenant="acme", model=MODEL) == 1
    assert total(s, "llm_gateway_quota_exceeded_total") == 0
    assert value(s, "llm_gateway_tokens_total", provider=PROVIDER, model=MODEL, type="prompt") == 38
    assert value(s, "llm_gateway_active_requests") == 0


def test_labels_are_bounded_no_key_or_request_ids(start_proxy):
    proxy = start_proxy()
    response = proxy.http.post("/v1/chat/completions", json=proxy.chat_body())
    assert response.status_code == 200
    request_id = response.headers["x-request-id"]
    s = scrape(proxy.gateway.base_url)
    ours = [(name, labels) for name, labels in s if name.startswith("llm_gateway_")]
    assert len(ours) > 50
    names = {label for _, labels in ours for label, _ in labels}
    assert names <= ALLOWED_LABELS
    values = {v for _, labels in ours for _, v in labels}
    assert request_id not in values
    assert not any(proxy.key.raw[:12] in v or str(proxy.key.key_id) == v for v in values)


def test_bearer_token_is_required_when_set(start_proxy):
    proxy = start_proxy(GATEWAY_METRICS_TOKEN="metrics-s3cret")
    url = f"{proxy.gateway.base_url}/metrics"
    missing = httpx.get(url)
    wrong = httpx.get(url, headers={"Authorization": "Bearer metrics-wrong"})
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert "metrics-s3cret" not in missing.text + wrong.text
    assert missing.headers["www-authenticate"] == 'Bearer realm="metrics"'
    s = scrape(proxy.gateway.base_url, headers={"Authorization": "Bearer metrics-s3cret"})
    assert value(s, "llm_gateway_active_requests") == 0
    assert httpx.post(url, headers={"Authorization": "Bearer metrics-s3cret"}).status_code == 405


def test_clients_outside_the_allowed_networks_get_403(start_proxy):
    proxy = start_proxy(GATEWAY_METRICS_ALLOWED_NETWORKS="10.0.0.0/8,192.168.0.0/16")
    response = httpx.get(f"{proxy.gateway.base_url}/metrics")
    assert response.status_code == 403
    assert "llm_gateway" not in response.text


def test_redis_errors_are_counted_by_component(start_proxy):
    dead_redis = f"redis://127.0.0.1:{closed_port()}/0"
    proxy = start_proxy(extra_yaml=RATE_TIER, REDIS_URL=dead_redis, GATEWAY_ON_REDIS_ERROR="open")
    before = scrape(proxy.gateway.base_url)
    assert value(before, "llm_gateway_redis_errors_total", component="limiter") == 0
    assert value(before, "llm_gateway_admitted_unchecked_total") == 0
    response = proxy.http.post("/v1/chat/completions", json=proxy.chat_body())
    assert response.status_code == 200  # admitted unchecked: the limiter fails open
    after = scrape(proxy.gateway.base_url)
    assert value(after, "llm_gateway_redis_errors_total", component="limiter") == 1
    assert value(after, "llm_gateway_admitted_unchecked_total") == 1
    assert value(after, "llm_gateway_redis_errors_total", component="config_pubsub") >= 1
    assert value(after, "llm_gateway_redis_errors_total", component="metrics") >= 1  # the outbox gauges
    assert ("llm_gateway_usage_outbox_lag", frozenset()) not in after
