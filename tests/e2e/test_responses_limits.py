"""On ``/v1/responses`` a request is admitted and settled exactly as a chat completion is: one
gateway, concurrent requests released together, exact admitted counts for a rate tier, spend
never past a hard cost quota (and equal to the admitted requests' cost), and a client that
leaves mid-stream recorded once."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
import pytest

from accounting.models import UsageRecord
from quotas.models import CostQuota
from stored_responses.models import StoredResponse
from tests.conftest import wait_for
from tests.e2e.conftest import MODEL, PROVIDER, Proxy, quota_spend, records
from tests.fakes.openai_upstream import FakeUsage, Reply

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# One dollar per million input tokens, two per million output tokens: exact micro-dollars.
PRICES = f"""
models:
  - name: {MODEL}
    deployments:
      - provider: {PROVIDER}
        model: {MODEL}-upstream
        input_per_million: "1"
        output_per_million: "2"
"""
# "hi" is the chat request's one user message: 7 tokens by the gateway's tokenizer, at most 8
# for cost; with max_output_tokens 46 a request reserves 8 + 2 x 46 = 100 micro-dollars.
BODY = {"model": MODEL, "input": "hi", "max_output_tokens": 46, "store": False}


def fire(proxy: Proxy, count: int, body: dict[str, object]) -> list[httpx.Response]:
    """``count`` requests at once (released together by a barrier)."""
    barrier = threading.Barrier(count)
    with httpx.Client(
        base_url=proxy.gateway.base_url,
        headers={"Authorization": f"Bearer {proxy.key.raw}"},
        timeout=30,
        limits=httpx.Limits(max_connections=count),
    ) as client:

        def one(_: int) -> httpx.Response:
            barrier.wait()
            return client.post("/v1/responses", json=body)

        with ThreadPoolExecutor(count) as pool:
            return list(pool.map(one, range(count)))


def statuses(responses: list[httpx.Response]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for response in responses:
        counts[response.status_code] = counts.get(response.status_code, 0) + 1
    return counts


def test_a_rate_tier_admits_exactly_its_requests(start_proxy) -> None:
    proxy = start_proxy(
        extra_yaml=PRICES
        + """
tiers:
  - name: small
    algorithm: fixed_window
    requests_per_minute: 5
tenants:
  - name: acme
    tier: small
"""
    )
    into = time.time() % 60
    if into > 50:  # the next fixed minute window, so every request shares one
        time.sleep(60 - into + 0.5)
    proxy.upstream.default = Reply(usage=FakeUsage(8, 26), delay=0.5)
    burst = fire(proxy, 12, BODY)
    assert statuses(burst) == {200: 5, 429: 7}
    for refused in (r for r in burst if r.status_code == 429):
        assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert len(proxy.upstream.requests) == 5
    rows = records(5)
    assert {(r.endpoint, r.status, r.prompt_tokens, r.completion_tokens) for r in rows} == {
        ("responses", 200, 8, 26)
    }


def test_a_hard_cost_quota_is_never_passed(start_proxy) -> None:
    proxy = start_proxy(
        extra_yaml=PRICES
        + """
tenants:
  - name: acme
    quotas:
      - period: month
        limit_usd: "0.001"
        hard: true
"""
    )
    quota = CostQuota.objects.get(tenant__name="acme")
    # All in flight at once: the limit holds ten reservations of 100 micro-dollars; each
    # request then costs 8 + 2 x 26 = 60.
    proxy.upstream.default = Reply(usage=FakeUsage(8, 26), delay=1.0)
    burst = fire(proxy, 30, BODY)
    assert statuses(burst) == {200: 10, 429: 20}
    for refused in (r for r in burst if r.status_code == 429):
        assert refused.json()["error"]["code"] == "insufficient_quota"
    tenant_id = proxy.key.tenant.pk
    wait_for(
        lambda: (
            quota_spend(proxy.gateway.env["GATEWAY_REDIS_PREFIX"], quota_id=quota.pk, tenant_id=tenant_id)
            == (600, 0)
        )
    )
    rows = records(10)
    assert sum((r.cost_usd for r in rows), Decimal(0)) == Decimal("0.000600")
    assert {r.endpoint for r in rows} == {"responses"}
    assert len(proxy.upstream.requests) == 10


def test_a_client_gone_mid_stream_is_recorded_once(start_proxy) -> None:
    proxy = start_proxy()
    proxy.upstream.default = Reply(content="one two three four five six", chunk_delay=0.3)
    body = {"model": MODEL, "input": "Count slowly", "stream": True}
    with proxy.http.stream("POST", "/v1/responses", json=body) as raw:
        lines = raw.iter_lines()
        while "response.output_text.delta" not in next(lines):
            pass
    wait_for(lambda: proxy.upstream.client_disconnects == 1)
    [record] = records(1)
    assert (record.endpoint, record.status, record.client_disconnected) == ("responses", 499, True)
    assert record.streamed and record.completion_tokens >= 1
    time.sleep(0.5)  # a second record would have been flushed by now
    assert UsageRecord.objects.count() == 1
    assert StoredResponse.objects.count() == 0  # an unfinished response is not kept
