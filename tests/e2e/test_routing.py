"""Routing end to end: two fake OpenAI upstreams behind one gateway (Daphne subprocess); the
strategies' splits, retries with backoff, fallback chains and streaming fallback, observed in
what each upstream received, the response headers and the usage records."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator

import httpx
import pytest
import redis
from django.conf import settings

from accounting.models import UsageRecord
from routing.sync import breakers_key
from tests.conftest import GatewayProcess, IssuedKey, wait_for
from tests.e2e.scrape import scrape, value
from tests.fakes.openai_upstream import ErrorReply, FakeOpenAIUpstream, Reply
from tests.gateway_site.console.test_applyconfig_routing import ISSUE_EXAMPLE

pytestmark = pytest.mark.django_db(transaction=True)

# The issue's example as written (``test_applyconfig_routing``); its two providers' stand-in
# URLs are pointed at the fake upstreams by ``with_upstreams``.
A_URL, B_URL = "http://127.0.0.1:9001/v1", "http://127.0.0.1:9002/v1"
PROVIDERS = ISSUE_EXAMPLE[: ISSUE_EXAMPLE.index("models:")]
FALLBACK_YAML = (
    PROVIDERS
    + """models:
  - name: chat-backup
    deployments:
      - {provider: upstream-b, model: backup-model, free: true}
  - name: chat-ha
    strategy: model
    fallbacks: [chat-backup]
    deployments:
      - {provider: upstream-a, model: primary-model, free: true}
"""
)


def two_deployments(strategy: str) -> str:
    """``chat-ha`` on upstream-a (priority 1) and upstream-b (priority 2)."""
    return (
        PROVIDERS
        + f"""models:
  - name: chat-ha
    strategy: {strategy}
    deployments:
      - {{provider: upstream-a, model: primary-model, priority: 1, free: true}}
      - {{provider: upstream-b, model: secondary-model, priority: 2, free: true}}
"""
    )


def with_upstreams(yaml_text: str, upstreams: tuple[FakeOpenAIUpstream, FakeOpenAIUpstream]) -> str:
    a, b = upstreams
    return yaml_text.replace(A_URL, a.base_url).replace(B_URL, b.base_url)


@pytest.fixture
def routed(
    upstreams: tuple[FakeOpenAIUpstream, FakeOpenAIUpstream],
    gateway_factory: Callable[..., GatewayProcess],
    configure: Callable[[str], None],
    make_key: Callable[..., IssuedKey],
) -> Iterator[Callable[[str], httpx.Client]]:
    clients: list[httpx.Client] = []

    def _start(yaml_text: str) -> httpx.Client:
        configure(with_upstreams(yaml_text, upstreams))
        key = make_key("acme")
        gateway = gateway_factory(GATEWAY_RETRIES="3", GATEWAY_RETRY_INITIAL_SECONDS="0.01")
        client = httpx.Client(
            base_url=gateway.base_url, headers={"Authorization": f"Bearer {key.raw}"}, timeout=30
        )
        clients.append(client)
        return client

    yield _start
    for client in clients:
        client.close()


def chat(client: httpx.Client, model: str = "chat-ha", **fields: object) -> httpx.Response:
    """One chat request; it skips the response cache (the issue's example caches ``chat-ha``,
    and these tests count how identical requests are routed)."""
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], **fields}
    return client.post("/v1/chat/completions", json=body, headers={"Cache-Control": "no-store"})


def breaker_state(gateway: GatewayProcess, deployment: str) -> float:
    """The breaker of ``deployment`` ("provider/upstream model") as this gateway's own board
    holds it, read from its ``/metrics``: 0 closed, 1 half-open, 2 open."""
    provider = deployment.partition("/")[0]
    samples = scrape(gateway.base_url)
    return value(samples, "llm_gateway_breaker_state", provider=provider, deployment=deployment)


def test_issue_example_applies_and_weighted_splits_three_to_one(routed, upstreams):
    a, b = upstreams
    client = routed(ISSUE_EXAMPLE)
    served = Counter()
    for _ in range(80):
        response = chat(client)
        assert response.status_code == 200
        assert response.headers["x-gateway-attempts"] == "1"
        served[response.headers["x-gateway-deployment"]] += 1
    assert served["upstream-a/gpt-4o-mini"] == len(a.requests)
    assert served["upstream-b/gpt-4o-mini"] == len(b.requests)
    assert len(a.requests) + len(b.requests) == 80
    # Expected 60:20; a binomial(80, 0.75) stays within 45..75 with probability > 0.9999.
    assert 45 <= len(a.requests) <= 75


def test_round_robin_alternates_exactly(routed, upstreams, configure):
    a, b = upstreams
    client = routed(ISSUE_EXAMPLE.replace("strategy: weighted", "strategy: round_robin"))
    for _ in range(10):
        assert chat(client).status_code == 200
    assert (len(a.requests), len(b.requests)) == (5, 5)


def test_retry_on_503_then_success(routed, upstreams):
    a, b = upstreams
    client = routed(FALLBACK_YAML)
    a.enqueue(ErrorReply(503, "busy", type="server_error"), ErrorReply(503, "busy", type="server_error"))
    response = chat(client)
    assert response.status_code == 200
    assert response.headers["x-gateway-attempts"] == "3"
    assert response.headers["x-gateway-deployment"] == "upstream-a/primary-model"
    assert (len(a.requests), len(b.requests)) == (3, 0)
    wait_for(lambda: UsageRecord.objects.count() == 1)
    record = UsageRecord.objects.get()
    assert (record.provider, record.upstream_model, record.status) == ("upstream-a", "primary-model", 200)

    # A 400 is never retried, nor passed on to the fallback model.
    a.enqueue(ErrorReply(400, "bad request"))
    response = chat(client)
    assert response.status_code == 400
    assert response.headers["x-gateway-attempts"] == "1"
    assert (len(a.requests), len(b.requests)) == (4, 0)


def test_retry_after_is_honoured(routed, upstreams):
    a, _ = upstreams
    client = routed(FALLBACK_YAML)
    a.enqueue(ErrorReply(429, "slow down", type="rate_limit_error", headers={"retry-after": "1"}))
    started = time.monotonic()
    response = chat(client)
    assert response.status_code == 200
    assert time.monotonic() - started >= 1.0
    assert response.headers["x-gateway-attempts"] == "2"
    assert len(a.requests) == 2


def test_fallback_chain_to_another_model_and_provider(routed, upstreams):
    a, b = upstreams
    client = routed(FALLBACK_YAML)
    a.enqueue(*[ErrorReply(503, "down", type="server_error")] * 4)
    response = chat(client)
    assert response.status_code == 200
    assert response.headers["x-gateway-attempts"] == "5"
    assert response.headers["x-gateway-deployment"] == "upstream-b/backup-model"
    assert (len(a.requests), len(b.requests)) == (4, 1)
    assert b.requests[0].body["model"] == "backup-model"
    wait_for(lambda: UsageRecord.objects.count() == 1)
    record = UsageRecord.objects.get()
    assert (record.model, record.provider, record.upstream_model) == ("chat-ha", "upstream-b", "backup-model")


def test_streaming_falls_back_before_the_first_byte(routed, upstreams):
    a, b = upstreams
    client = routed(FALLBACK_YAML)
    a.enqueue(*[ErrorReply(503, "down", type="server_error")] * 4)
    b.enqueue(Reply(content="from backup"))
    with client.stream(
        "POST",
        "/v1/chat/completions",
        json={"model": "chat-ha", "messages": [{"role": "user", "content": "hi"}], "stream": True},
    ) as response:
        assert response.status_code == 200
        assert response.headers["x-gateway-deployment"] == "upstream-b/backup-model"
        body = response.read().decode()
    assert "backup" in body and body.rstrip().endswith("data: [DONE]")
    assert "error" not in body
    assert (len(a.requests), len(b.requests)) == (4, 1)


def test_streaming_retries_only_before_the_first_content_byte(routed, upstreams):
    a, b = upstreams
    client = routed(FALLBACK_YAML)
    a.enqueue(Reply(content="lost words", fail_after=0, failure="reset"), Reply(content="second try"))
    with client.stream(
        "POST",
        "/v1/chat/completions",
        json={"model": "chat-ha", "messages": [{"role": "user", "content": "hi"}], "stream": True},
    ) as response:
        body = response.read().decode()
        assert response.headers["x-gateway-attempts"] == "2"
    assert "second" in body and "lost" not in body and body.rstrip().endswith("data: [DONE]")
    assert (len(a.requests), len(b.requests)) == (2, 0)

    # Once a content byte reached the client nothing is retried: the stream ends with an error.
    a.enqueue(Reply(content="one two three four", fail_after=2, failure="reset"))
    with client.stream(
        "POST",
        "/v1/chat/completions",
        json={"model": "chat-ha", "messages": [{"role": "user", "content": "hi"}], "stream": True},
    ) as response:
        body = response.read().decode()
    assert '"error"' in body and "[DONE]" not in body
    assert (len(a.requests), len(b.requests)) == (3, 0)
    wait_for(lambda: UsageRecord.objects.count() == 2)
    record = UsageRecord.objects.order_by("created_at", "id").last()
    assert record.provider == "upstream-a" and record.status >= 500


def test_open_breaker_is_skipped_on_every_instance(
    upstreams, gateway_factory, configure, make_key, redis_prefix
):
    a, b = upstreams
    configure(with_upstreams(two_deployments("fallback"), upstreams))
    key = make_key("acme")
    env = {
        "GATEWAY_RETRIES": "0",
        "GATEWAY_BREAKER_FAILURES": "2",
        "GATEWAY_BREAKER_OPEN_SECONDS": "120",
        "GATEWAY_ROUTING_SYNC_SECONDS": "0.1",
    }
    first, second = gateway_factory(**env), gateway_factory(**env)
    headers = {"Authorization": f"Bearer {key.raw}"}
    with (
        httpx.Client(base_url=first.base_url, headers=headers, timeout=30) as one,
        httpx.Client(base_url=second.base_url, headers=headers, timeout=30) as two,
    ):
        for client in (one, two):  # each instance's router (and its sync task) is running
            assert chat(client).headers["x-gateway-deployment"] == "upstream-a/primary-model"
        a.enqueue(*[ErrorReply(503, "down", type="server_error")] * 2)
        for _ in range(2):
            response = chat(one)
            assert response.status_code == 200
            assert response.headers["x-gateway-attempts"] == "2"
            assert response.headers["x-gateway-deployment"] == "upstream-b/secondary-model"
        assert (len(a.requests), len(b.requests)) == (4, 2)
        # Open on the first instance: the primary gets no traffic, not even a failed call.
        response = chat(one)
        assert response.headers["x-gateway-attempts"] == "1"
        assert response.headers["x-gateway-deployment"] == "upstream-b/secondary-model"
        # Published through Redis, and skipped by the second instance too.
        client = redis.Redis.from_url(settings.REDIS_URL)
        try:
            wait_for(lambda: client.hlen(breakers_key(redis_prefix)) == 1)
        finally:
            client.close()
        wait_for(lambda: breaker_state(second, "upstream-a/primary-model") == 2)  # synced
        for _ in range(3):
            response = chat(two)
            assert response.headers["x-gateway-attempts"] == "1"
            assert response.headers["x-gateway-deployment"] == "upstream-b/secondary-model"
        assert (len(a.requests), len(b.requests)) == (4, 6)
