"""One gateway, real HTTP: the soft-quota alert reaches a webhook exactly once; without Redis
the same limits hold in process (and every chat response, streamed or failed, carries the
``x-ratelimit-*`` headers); key rotation with a grace period; ``last_used_at`` follows use."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
import pytest

from accounting.models import UsageRecord
from quotas.models import ApiKey, QuotaAlert
from tests.conftest import wait_for
from tests.e2e.conftest import MODEL, PROVIDER, Proxy
from tests.fakes.openai_upstream import ErrorReply, FakeUsage, Reply
from tests.fakes.webhook_receiver import WebhookReceiver

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# The deployment at one and two dollars per million tokens: 8 prompt + 26 completion tokens
# cost exactly 60 micro-dollars.
PRICES = f"""
models:
  - name: {MODEL}
    deployments:
      - provider: {PROVIDER}
        model: {MODEL}-upstream
        input_per_million: "1"
        output_per_million: "2"
"""


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    yield server
    server.stop()


def fire(proxy: Proxy, count: int, body: dict[str, object]) -> list[httpx.Response]:
    barrier = threading.Barrier(count)
    with httpx.Client(
        base_url=proxy.gateway.base_url,
        headers={"Authorization": f"Bearer {proxy.key.raw}"},
        timeout=30,
        limits=httpx.Limits(max_connections=count),
    ) as client:

        def one(_: int) -> httpx.Response:
            barrier.wait()
            return client.post("/v1/chat/completions", json=body)

        with ThreadPoolExecutor(count) as pool:
            return list(pool.map(one, range(count)))


def test_soft_quota_alert_is_posted_once_and_recorded(start_proxy, make_key, receiver):
    fence = make_key("fence")  # another tenant, whose own alert comes after any of acme's
    proxy = start_proxy(
        extra_yaml=PRICES
        + f"""
tenants:
  - name: acme
    quotas:
      - period: day
        limit_usd: "0.0005"
        hard: false
        alert_at: 0.5
        alert_webhook: {receiver.url}
  - name: fence
    quotas:
      - period: day
        limit_usd: "0.0001"
        hard: false
        alert_at: 0.5
        alert_webhook: {receiver.url}
"""
    )
    proxy.upstream.default = Reply(usage=FakeUsage(8, 26))

    # Ten requests of 60 micro-dollars at once: 600 of a 500 soft limit, all served; the
    # 250 threshold is crossed by exactly one of them, the fifth to settle (5 x 60 = 300).
    responses = fire(proxy, 10, proxy.chat_body("hi"))

    assert {r.status_code for r in responses} == {200}
    # All ten settled (each settlement appends its usage event in the same Redis round trip), so
    # a second alert of acme's, if any, is already queued. Then one request of the fence tenant
    # crosses its own threshold (60 of 100, at 50): the dispatcher's one thread posts alerts in
    # order, so a second alert of acme's would arrive before the fence's.
    wait_for(lambda: UsageRecord.objects.count() == 10)
    fenced = proxy.http.post(
        "/v1/chat/completions", json=proxy.chat_body("hi"), headers={"Authorization": f"Bearer {fence.raw}"}
    )
    assert fenced.status_code == 200
    wait_for(lambda: len(receiver.received) >= 2, timeout=5)
    assert [a["tenant"] for a in receiver.received] == ["acme", "fence"]
    alert = receiver.received[0]
    assert alert["type"] == "quota.alert"
    assert (alert["tenant"], alert["owner"], alert["period"], alert["hard"]) == (
        "acme",
        "tenant",
        "day",
        False,
    )
    assert (alert["limit_usd"], alert["threshold"]) == ("0.0005", "0.500")
    assert alert["spent_usd"] == "0.0003"
    row = wait_for(
        lambda: QuotaAlert.objects.filter(quota__tenant__name="acme", delivered_at__isnull=False).first()
    )
    assert (row.period_key, row.attempts, row.webhook) == (alert["period_key"], 1, receiver.url)
    assert row.spent_usd == Decimal("0.0003")
    assert QuotaAlert.objects.filter(quota__tenant__name="acme").count() == 1
    assert QuotaAlert.objects.count() == 2
    wait_for(lambda: UsageRecord.objects.count() == 11)


def test_without_redis_the_same_limits_hold_in_process(start_proxy):
    proxy = start_proxy(
        extra_yaml="""
tiers:
  - name: small
    algorithm: fixed_window
    requests_per_minute: 6
tenants:
  - name: acme
    tier: small
""",
        REDIS_URL="",
    )
    into = time.time() % 60
    if into > 50:  # time passing: the next fixed minute window, so every request shares one
        time.sleep(60 - into + 0.5)

    # A streamed response carries the headers too.
    with proxy.http.stream("POST", "/v1/chat/completions", json=proxy.chat_body(stream=True)) as streamed:
        assert streamed.status_code == 200
        assert streamed.headers["content-type"].startswith("text/event-stream")
        assert streamed.headers["x-ratelimit-limit-requests"] == "6"
        assert streamed.headers["x-ratelimit-remaining-requests"] == "5"
        assert "data: [DONE]" in streamed.read().decode()
    # So does an upstream failure.
    proxy.upstream.enqueue(ErrorReply(500, "boom", type="server_error"))
    failed = proxy.http.post("/v1/chat/completions", json=proxy.chat_body())
    assert failed.status_code == 502
    assert failed.headers["x-ratelimit-remaining-requests"] == "4"

    responses = fire(proxy, 8, proxy.chat_body())

    assert sorted(r.status_code for r in responses) == [200] * 4 + [429] * 4
    assert len(proxy.upstream.requests) == 6
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert 1 <= int(refused.headers["retry-after"]) <= 60


def status(proxy: Proxy, raw_key: str) -> int:
    return proxy.http.post(
        "/v1/chat/completions", json=proxy.chat_body(), headers={"Authorization": f"Bearer {raw_key}"}
    ).status_code


def test_rotation_with_grace_then_without_and_last_used_at(start_proxy):
    proxy = start_proxy()
    first = proxy.key.raw
    assert status(proxy, first) == 200

    second = proxy.gateway.manage("rotatekey", first[:12], "--grace-hours", "1").stdout.splitlines()[-1]

    wait_for(lambda: status(proxy, second) == 200, timeout=1.0)
    assert status(proxy, first) == 200  # in its grace period
    key = ApiKey.objects.get(pk=proxy.key.key_id)
    assert (key.prefix, key.previous_prefix) == (second[:12], first[:12])

    third = proxy.gateway.manage("rotatekey", second).stdout.splitlines()[-1]

    wait_for(lambda: status(proxy, first) == 401 and status(proxy, second) == 401, timeout=1.0)
    assert status(proxy, third) == 200

    # All of it is one key: its usage and last use carry over.
    def last_use_recorded() -> bool:
        records = UsageRecord.objects.filter(key_id=proxy.key.key_id)
        last = records.order_by("-created_at").first()
        used = ApiKey.objects.get(pk=proxy.key.key_id).last_used_at
        return records.count() >= 4 and last is not None and used == last.created_at

    wait_for(last_use_recorded)
