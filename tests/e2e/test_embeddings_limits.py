"""``/v1/embeddings`` is admitted like chat: its tokens count against the key's tokens per
minute (reserved from the input's estimate, settled with the upstream's count), its requests
against requests per minute, and its cost against hard cost quotas (reserved at the input's
UTF-8 byte bound, settled at the actual cost). Refused requests reach no upstream and leave no
usage record."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from accounting.models import UsageRecord
from quotas.models import CostQuota
from tests.conftest import wait_for
from tests.e2e.conftest import PROVIDER, Proxy, quota_spend, records
from tests.fakes.embeddings_wire import EmbeddingsReply

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

EMBED_MODEL = "embed-small"
TEXT = "hello world"  # 11 bytes: a cost bound of 1,100 micro-dollars at $100 per million
UPSTREAM_TOKENS = 8  # what the fake upstream reports for every embeddings request
EMBED_YAML = f"""
models:
  - name: {EMBED_MODEL}
    deployments:
      - provider: {PROVIDER}
        model: text-embedding-3-small
        input_per_million: "100"
"""


def embed(proxy: Proxy, text: str = TEXT):
    return proxy.http.post("/v1/embeddings", json={"model": EMBED_MODEL, "input": text})


def clear_of_minute_boundary() -> None:
    """Fixed one-minute windows: start well inside one so a test's requests share it."""
    into = time.time() % 60
    if into > 45:  # time passing: into the next window
        time.sleep(60 - into + 0.5)


def test_requests_and_tokens_per_minute_count_embeddings(start_proxy, make_key):
    fence = make_key("fence")  # another tenant, without limits, whose request comes last
    proxy = start_proxy(
        extra_yaml=EMBED_YAML
        + """
tiers:
  - name: embed-tier
    algorithm: fixed_window
    requests_per_minute: 3
    tokens_per_minute: 1000
tenants:
  - name: acme
    tier: embed-tier
"""
    )
    clear_of_minute_boundary()
    estimate = 2  # TEXT by the gateway's tokenizer: "hello", " world"

    first = embed(proxy)
    assert first.status_code == 200
    assert first.headers["x-ratelimit-limit-requests"] == "3"
    assert first.headers["x-ratelimit-remaining-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-tokens"] == str(1000 - estimate)
    # The second is admitted after the first settled at the upstream's 8 tokens (settlement and
    # the usage event are one Redis script, so the record's presence shows the settlement).
    records(1)
    second = embed(proxy)
    assert second.status_code == 200
    assert second.headers["x-ratelimit-remaining-tokens"] == str(1000 - UPSTREAM_TOKENS - estimate)
    assert embed(proxy).status_code == 200
    refused = embed(proxy)

    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert len([r for r in proxy.upstream.requests if r.path == "/v1/embeddings"]) == 3
    rows = records(3)
    assert [(r.endpoint, r.prompt_tokens, r.status) for r in rows] == [("embeddings", 8, 200)] * 3
    # A record of the refused request would travel the outbox stream ahead of the fence's.
    fenced = proxy.http.post(
        "/v1/embeddings",
        json={"model": EMBED_MODEL, "input": TEXT},
        headers={"Authorization": f"Bearer {fence.raw}"},
    )
    assert fenced.status_code == 200
    wait_for(lambda: UsageRecord.objects.filter(tenant_name="fence").count() == 1)
    assert UsageRecord.objects.filter(tenant_name="acme").count() == 3
    assert UsageRecord.objects.count() == 4


def test_hard_cost_quota_reserves_the_input_bound_and_settles_the_actual_cost(start_proxy, redis_prefix):
    proxy = start_proxy(
        extra_yaml=EMBED_YAML
        + """
tenants:
  - name: acme
    quotas:
      - period: month
        limit_usd: "0.0020"
        hard: true
"""
    )
    quota = CostQuota.objects.get(tenant__name="acme")

    # Reserve 1,100, settle 800; then 800 + 1,100 fits under 2,000; then 1,600 + 1,100 does not.
    assert embed(proxy).status_code == 200
    wait_for(lambda: quota_spend(redis_prefix, quota_id=quota.pk, tenant_id=proxy.key.tenant.pk) == (800, 0))
    assert embed(proxy).status_code == 200
    wait_for(lambda: quota_spend(redis_prefix, quota_id=quota.pk, tenant_id=proxy.key.tenant.pk) == (1600, 0))
    refused = embed(proxy)

    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "insufficient_quota"
    assert quota_spend(redis_prefix, quota_id=quota.pk, tenant_id=proxy.key.tenant.pk) == (1600, 0)
    assert len([r for r in proxy.upstream.requests if r.path == "/v1/embeddings"]) == 2
    rows = records(2)
    assert [r.cost_usd for r in rows] == [Decimal("0.0008")] * 2
    # A shorter input still fits: 1,600 + 300 (3 bytes, "hey") = 1,900; it costs 2 tokens.
    proxy.upstream.embeddings_reply = EmbeddingsReply(prompt_tokens=2)
    assert embed(proxy, "hey").status_code == 200
    wait_for(lambda: quota_spend(redis_prefix, quota_id=quota.pk, tenant_id=proxy.key.tenant.pk) == (1800, 0))
    assert [r.cost_usd for r in records(3)] == [Decimal("0.0008")] * 2 + [Decimal("0.0002")]
