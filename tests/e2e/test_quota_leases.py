"""A gateway killed mid-request (SIGKILL: nothing settles) blocks its tenant's hard cost quota
only until the reservations' lease ends: the request's deadline plus the lease margin
(``GATEWAY_LEASE_MARGIN_SECONDS``, shortened here). Then the reservations are gone from the
shared counters without any reservation made after them, and the tenant is served again."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
import pytest
import redis
from django.conf import settings

from quotas.models import CostQuota
from tests.conftest import CANARY, wait_for
from tests.e2e.conftest import quota_spend, records
from tests.fakes.openai_upstream import FakeUsage, Reply

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

UPSTREAM_KEY_ENV = "GW_E2E_LEASES_UPSTREAM_KEY"
UPSTREAM_TIMEOUT_S = 4
LEASE_MARGIN_S = 8
LEASE_S = UPSTREAM_TIMEOUT_S + LEASE_MARGIN_S
# One and two dollars per million tokens; "hi" with max_tokens 46 reserves 8 + 92 = 100
# micro-dollars and, answered with 8 + 26 tokens, costs 60. The quota holds five reservations.
CONFIG = """
providers:
  - name: slow-openai
    kind: openai
    base_url: {base_url}
    api_key_env: {env}
    timeout_seconds: {timeout}
models:
  - name: gpt-4o-mini
    timeout_seconds: {timeout}  # the model's deadline bounds the lease too (retries, fallbacks)
    deployments:
      - provider: slow-openai
        model: gpt-4o-mini-upstream
        input_per_million: "1"
        output_per_million: "2"
tenants:
  - name: acme
    quotas:
      - period: month
        limit_usd: "0.0005"
        hard: true
"""
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 46}


def chat(base_url: str, key: str) -> httpx.Response:
    return httpx.post(
        f"{base_url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, json=BODY, timeout=30
    )


def quota_fields(prefix: str, *, quota_id: int, tenant_id: int) -> tuple[dict[bytes, bytes], bool]:
    """The quota hash of the current period, and whether its leases set exists."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        found = [
            k
            for k in client.scan_iter(match=f"{prefix}{{t{tenant_id}}}:q{quota_id}:*")
            if not k.endswith(b":leases")
        ]
        # what the prefix holds, with each key's time to live, when the hash is not alone
        assert len(found) == 1, {k: client.pttl(k) for k in client.scan_iter(match=f"{prefix}*")}
        [key] = found
        return client.hgetall(key), bool(client.exists(key + b":leases"))
    finally:
        client.close()


def test_a_killed_gateways_reservations_end_with_their_lease(
    gateway_factory, configure, make_key, openai_upstream, redis_prefix
):
    configure(
        CONFIG.format(base_url=openai_upstream.base_url, env=UPSTREAM_KEY_ENV, timeout=UPSTREAM_TIMEOUT_S)
    )
    key = make_key("acme")
    quota = CostQuota.objects.get(tenant__name="acme")
    ids = {"quota_id": quota.pk, "tenant_id": key.tenant.pk}
    openai_upstream.default = Reply(usage=FakeUsage(8, 26), delay=30)
    lease = {"GATEWAY_LEASE_MARGIN_SECONDS": str(LEASE_MARGIN_S)}
    doomed = gateway_factory(REDIS_URL=settings.REDIS_URL, **lease, **{UPSTREAM_KEY_ENV: CANARY})

    with ThreadPoolExecutor(5) as pool:
        in_flight = [pool.submit(chat, doomed.base_url, key.raw) for _ in range(5)]
        wait_for(lambda: len(openai_upstream.requests) == 5, timeout=10, interval=0.01)
        leases_end = time.monotonic() + LEASE_S  # every lease began before its request went upstream
        doomed.process.kill()
        doomed.process.wait(10)
        for future in in_flight:
            with pytest.raises(httpx.TransportError):
                future.result()

    wait_for(lambda: openai_upstream.client_disconnects == 5)
    assert quota_spend(redis_prefix, **ids) == (0, 500)  # nothing settled
    fields, leases_exist = quota_fields(redis_prefix, **ids)
    assert len([name for name in fields if name.startswith(b"r:")]) == 5
    assert leases_exist

    gateway = gateway_factory(REDIS_URL=settings.REDIS_URL, **lease, **{UPSTREAM_KEY_ENV: CANARY})
    held = chat(gateway.base_url, key.raw)
    assert held.status_code == 429
    assert held.json()["error"]["code"] == "insufficient_quota"
    assert held.headers["retry-after"] == "1"  # only reservations in flight are in the way
    assert time.monotonic() < leases_end  # that refusal was inside the leases

    time.sleep(max(0.0, leases_end - time.monotonic()) + 1.0)
    usage = httpx.get(
        f"{gateway.base_url}/v1/usage", headers={"Authorization": f"Bearer {key.raw}"}, timeout=10
    )
    assert usage.status_code == 200
    [line] = usage.json()["quotas"]
    assert (line["spent_usd"], line["reserved_usd"], line["remaining_usd"]) == ("0", "0", "0.0005")
    assert quota_fields(redis_prefix, **ids) == ({b"reserved": b"0"}, False)

    openai_upstream.default = Reply(usage=FakeUsage(8, 26))
    served = chat(gateway.base_url, key.raw)
    assert served.status_code == 200
    wait_for(lambda: quota_spend(redis_prefix, **ids) == (60, 0))
    assert len(openai_upstream.requests) == 6  # the refused request reached no upstream
    assert [(r.status, r.cost_usd) for r in records(1)] == [(200, Decimal("0.00006"))]
