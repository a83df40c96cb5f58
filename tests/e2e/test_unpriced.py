"""An undated model alias is billed, end to end: ``manage.py applyconfig`` (a separate process)
refuses a ``claude-sonnet-4-5`` deployment without a price and applies nothing; with
``--default-prices`` the shipped price makes it cost what Anthropic charges, the usage record
carries that price version, and the tenant's hard cost quota stops it."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal

import httpx
import pytest
import redis

from accounting.models import DeploymentPrice
from tests.conftest import ROOT
from tests.e2e.conftest import records
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

KEY_ENV = "GW_E2E_UNPRICED_KEY"
# The fake's usage: 21 input and 5 output tokens, at claude-sonnet-4-5's 3 / 15 dollars per million.
COST = (Decimal(21) * 3 + Decimal(5) * 15) / Decimal(1_000_000)


@pytest.fixture
def upstream():
    fake = FakeAnthropicUpstream(api_key="unpriced-test-key").start()
    yield fake
    fake.stop()


def applyconfig(gateway_env: dict[str, str], path: str, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "applyconfig", path, *options],
        env=gateway_env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_an_undated_alias_is_refused_unpriced_then_billed_at_the_shipped_price(
    upstream, gateway_factory, make_key, tmp_path
):
    config = tmp_path / "gateway.yaml"
    config.write_text(
        f"""
providers:
  - {{name: claude, kind: anthropic, base_url: "{upstream.base_url}", api_key_env: {KEY_ENV}}}
models:
  - name: sonnet
    deployments:
      - {{provider: claude, model: claude-sonnet-4-5}}
tenants:
  - name: acme
    quotas:
      - {{period: month, limit_usd: "0.0002", hard: true}}
"""
    )
    gateway = gateway_factory(**{KEY_ENV: "unpriced-test-key"})
    key = make_key("acme")
    http = httpx.Client(base_url=gateway.base_url, headers={"Authorization": f"Bearer {key.raw}"}, timeout=30)
    body = {"model": "sonnet", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}

    refused = applyconfig(gateway.env, str(config))
    assert refused.returncode == 1
    assert "nothing applied: deployment sonnet -> claude/claude-sonnet-4-5 has no price" in refused.stderr
    assert http.post("/v1/chat/completions", json=body).status_code == 404
    assert upstream.requests == []

    applied = applyconfig(gateway.env, str(config), "--default-prices")
    assert applied.returncode == 0, applied.stderr
    assert "created price sonnet -> claude/claude-sonnet-4-5 from 2025-09-29 00:00" in applied.stdout
    version = DeploymentPrice.objects.get()

    answered = http.post("/v1/chat/completions", json=body)
    assert answered.status_code == 200, answered.text
    (record,) = records(1)
    assert (record.cost_usd, record.price_version_id, record.prompt_tokens) == (COST, version.pk, 21)

    # 138 micro-dollars spent of 200: the next request's reservation does not fit.
    over = http.post("/v1/chat/completions", json=body)
    # on a failure (seen once in CI, not reproduced): what the gateway answered and what the
    # quota's counters held in Redis, if the gateway uses it
    assert over.status_code == 429, (over.headers, over.text[:300], _counters(gateway.env))
    assert over.json()["error"]["code"] == "insufficient_quota"
    assert len(upstream.requests) == 1
    http.close()


def _counters(gateway_env: dict[str, str]) -> dict[bytes, object]:
    url, prefix = gateway_env.get("REDIS_URL", ""), gateway_env.get("GATEWAY_REDIS_PREFIX", "")
    if not url:
        return {}
    client = redis.Redis.from_url(url)
    try:
        return {
            k: client.hgetall(k)
            for k in client.scan_iter(match=f"{prefix}*:q*")
            if not k.endswith(b":leases")
        }
    finally:
        client.close()
