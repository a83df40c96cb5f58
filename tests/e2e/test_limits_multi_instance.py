"""Limits hold exactly across gateway instances: three Daphne processes share one Redis and one
Postgres; concurrent requests are fired at all three and exactly the allowed number gets
through, for a requests-per-minute limit, a tokens-per-minute limit, a parallel limit and a
hard cost quota (whose spend ends equal to the admitted requests' actual cost, never above the
limit). A key revoked through one instance's admin is refused by the others within a second.

The three gateways are started once for the module (starting Daphne is the slow part); each
test configures its own tenant, tier and key, which the gateways pick up within a second."""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal

import httpx
import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import User

from accounting.models import UsageRecord
from quotas.models import CostQuota
from tests.conftest import CANARY, GatewayProcess, IssuedKey, signed_in, start_gateway, wait_for
from tests.e2e.conftest import quota_spend
from tests.fakes.openai_upstream import FakeOpenAIUpstream, FakeUsage, Reply

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

UPSTREAM_KEY_ENV = "GW_E2E_LIMITS_UPSTREAM_KEY"
MODEL = "gpt-4o-mini"
# One dollar per million input tokens, two per million output tokens: one token is one or two
# micro-dollars, so every cost here is exact in the counters.
PROVIDER_YAML = """
providers:
  - name: fake-openai
    kind: openai
    base_url: {base_url}
    api_key_env: {env}
models:
  - name: gpt-4o-mini
    deployments:
      - provider: fake-openai
        model: gpt-4o-mini-upstream
        input_per_million: "1"
        output_per_million: "2"
"""
# "hi": 7 tokens by the gateway's tokenizer (1 + 3 per message + 3 reply priming), at most 8
# (2 bytes + 6). With max_tokens 93 a request reserves 100 tokens; with 46, 8 + 92 = 100
# micro-dollars of cost.
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}


@dataclass
class Cluster:
    gateways: list[GatewayProcess]
    prefix: str
    upstream: FakeOpenAIUpstream

    def fire(self, key: IssuedKey, count: int, body: dict[str, object]) -> list[httpx.Response]:
        """``count`` requests at once, spread over the three gateways (released together)."""
        barrier = threading.Barrier(count)
        headers = {"Authorization": f"Bearer {key.raw}"}
        with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=count)) as client:

            def one(i: int) -> httpx.Response:
                barrier.wait()
                url = f"{self.gateways[i % 3].base_url}/v1/chat/completions"
                return client.post(url, headers=headers, json=body)

            with ThreadPoolExecutor(count) as pool:
                return list(pool.map(one, range(count)))

    def known_everywhere(self, key: IssuedKey) -> None:
        """Wait until every gateway authenticates the key (GET /v1/models uses no limit)."""
        for gateway in self.gateways:
            wait_for(
                lambda gateway=gateway: (
                    httpx.get(
                        f"{gateway.base_url}/v1/models", headers={"Authorization": f"Bearer {key.raw}"}
                    ).status_code
                    == 200
                ),
                timeout=5,
            )


@pytest.fixture(scope="module")
def cluster(django_db_setup, tmp_path_factory, telemetry_outputs) -> Iterator[Cluster]:
    if not settings.REDIS_URL:
        pytest.fail("these tests need REDIS_URL")
    upstream = FakeOpenAIUpstream().start()
    prefix = f"gwtest:{secrets.token_hex(6)}:"
    root = tmp_path_factory.mktemp("cluster")
    env = {UPSTREAM_KEY_ENV: CANARY}

    def start(i: int) -> GatewayProcess:
        path = root / f"gw{i}"
        path.mkdir()
        return start_gateway(tmp_path=path, redis_prefix=prefix, extra_env=env)

    with ThreadPoolExecutor(3) as pool:
        gateways = list(pool.map(start, range(3)))
    telemetry_outputs.log_paths.extend(g.log_path for g in gateways)
    yield Cluster(gateways=gateways, prefix=prefix, upstream=upstream)
    for gateway in gateways:
        gateway.stop()
    upstream.stop()
    client = redis.Redis.from_url(settings.REDIS_URL)
    stale = list(client.scan_iter(match=f"{prefix}*"))
    if stale:
        client.delete(*stale)
    client.close()


@pytest.fixture
def setup(cluster, configure, make_key):
    """``setup(yaml_for_tiers_and_tenant, tenant)``: the provider, the given tiers and tenant,
    and a fresh key every gateway already knows."""
    cluster.upstream.default = Reply(usage=FakeUsage(8, 26))
    upstream_seen = len(cluster.upstream.requests)

    def _setup(extra_yaml: str, tenant: str) -> IssuedKey:
        configure(PROVIDER_YAML.format(base_url=cluster.upstream.base_url, env=UPSTREAM_KEY_ENV) + extra_yaml)
        key = make_key(tenant)
        cluster.known_everywhere(key)
        return key

    _setup.upstream_seen = lambda: len(cluster.upstream.requests) - upstream_seen  # type: ignore[attr-defined]
    yield _setup
    # Usage still on its way must land before the tables are emptied: every request that reached
    # the upstream (no retries here) leaves exactly one record.
    wait_for(lambda: UsageRecord.objects.count() == _setup.upstream_seen())


def avoid_minute_edge(margin: float = 10.0) -> None:
    """Per-minute windows: start a test well inside one minute (its requests take seconds)."""
    into = time.time() % 60
    if into > 60 - margin:
        time.sleep(60 - into + 0.5)


def statuses(responses: list[httpx.Response]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for response in responses:
        counts[response.status_code] = counts.get(response.status_code, 0) + 1
    return counts


def assert_refused(response: httpx.Response, *, code: str) -> None:
    assert response.status_code == 429
    assert response.json()["error"]["code"] == code
    assert int(response.headers["retry-after"]) >= 1


def test_requests_per_minute_exact_across_three_gateways(cluster, setup):
    key = setup(
        """
tiers:
  - name: rpm10
    algorithm: sliding_window
    requests_per_minute: 10
tenants:
  - name: rpm-tenant
    tier: rpm10
""",
        "rpm-tenant",
    )
    avoid_minute_edge()

    responses = cluster.fire(key, 30, BODY)

    assert statuses(responses) == {200: 10, 429: 20}
    assert setup.upstream_seen() == 10
    for response in responses:
        assert response.headers["x-ratelimit-limit-requests"] == "10"
        assert "x-ratelimit-reset-requests" in response.headers
        if response.status_code == 429:
            assert_refused(response, code="rate_limit_exceeded")
            assert response.json()["error"]["type"] == "requests"
            assert response.headers["x-ratelimit-remaining-requests"] == "0"
    remaining = sorted(
        int(r.headers["x-ratelimit-remaining-requests"]) for r in responses if r.status_code == 200
    )
    assert remaining == list(range(10))
    wait_for(lambda: UsageRecord.objects.count() == 10)  # refusals are not recorded


def test_tokens_per_minute_exact_and_settled_with_actual_usage(cluster, setup):
    key = setup(
        """
tiers:
  - name: tpm1000
    algorithm: sliding_window
    tokens_per_minute: 1000
tenants:
  - name: tpm-tenant
    tier: tpm1000
""",
        "tpm-tenant",
    )
    avoid_minute_edge()
    # Slow upstream: every request is admitted or refused before the first one settles.
    cluster.upstream.default = Reply(usage=FakeUsage(8, 14), delay=1.0)
    body = {**BODY, "max_tokens": 93}  # 100 tokens reserved each

    responses = cluster.fire(key, 30, body)

    assert statuses(responses) == {200: 10, 429: 20}
    for response in responses:
        assert response.headers["x-ratelimit-limit-tokens"] == "1000"
        if response.status_code == 429:
            assert_refused(response, code="rate_limit_exceeded")
            assert response.json()["error"]["type"] == "tokens"
    # Settled: each admitted request used 22 tokens, not 100, so 780 are left before this one.
    wait_for(lambda: UsageRecord.objects.count() == 10)
    cluster.upstream.default = Reply(usage=FakeUsage(8, 14))

    def remaining_after_one() -> int | None:
        response = httpx.post(
            f"{cluster.gateways[1].base_url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {key.raw}"},
            json=body,
            timeout=10,
        )
        assert response.status_code == 200
        return int(response.headers["x-ratelimit-remaining-tokens"])

    assert remaining_after_one() == 1000 - 10 * 22 - 100


def test_parallel_limit_exact_across_three_gateways(cluster, setup):
    key = setup(
        """
tiers:
  - name: par4
    max_parallel: 4
tenants:
  - name: par-tenant
    tier: par4
""",
        "par-tenant",
    )
    cluster.upstream.default = Reply(usage=FakeUsage(8, 26), delay=1.5)

    responses = cluster.fire(key, 20, BODY)

    assert statuses(responses) == {200: 4, 429: 16}
    for response in responses:
        if response.status_code == 429:
            assert_refused(response, code="rate_limit_exceeded")
            assert "in flight" in response.json()["error"]["message"]
    # The slots were released when the requests ended.
    cluster.upstream.default = Reply(usage=FakeUsage(8, 26), delay=0.5)
    assert statuses(cluster.fire(key, 4, BODY)) == {200: 4}


def test_hard_cost_quota_exact_and_never_passed(cluster, setup):
    key = setup(
        """
tenants:
  - name: budget-tenant
    quotas:
      - period: month
        limit_usd: "0.001"
        hard: true
""",
        "budget-tenant",
    )
    quota = CostQuota.objects.get(tenant__name="budget-tenant")
    # Each request reserves 100 micro-dollars and costs 60 (8 prompt + 26 completion tokens).
    body = {**BODY, "max_tokens": 46}
    cluster.upstream.default = Reply(usage=FakeUsage(8, 26), delay=1.0)

    burst = cluster.fire(key, 30, body)

    # All in flight at once: the limit holds ten reservations of 100.
    assert statuses(burst) == {200: 10, 429: 20}
    for response in burst:
        if response.status_code == 429:
            assert_refused(response, code="insufficient_quota")
    wait_for(lambda: quota_spend(cluster.prefix, quota_id=quota.pk, tenant_id=key.tenant.pk) == (600, 0))

    # One at a time, round robin: admitted while spend + 100 fits in 1,000.
    cluster.upstream.default = Reply(usage=FakeUsage(8, 26))
    sequential = []
    for gateway in itertools.islice(itertools.cycle(cluster.gateways), 9):
        response = httpx.post(
            f"{gateway.base_url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {key.raw}"},
            json=body,
            timeout=10,
        )
        sequential.append(response.status_code)
        # The next request is decided after this one's settlement.
        if response.status_code == 200:
            wait_for(lambda: quota_spend(cluster.prefix, quota_id=quota.pk, tenant_id=key.tenant.pk)[1] == 0)
    assert sequential == [200] * 6 + [429] * 3

    wait_for(lambda: UsageRecord.objects.count() == 16)
    recorded = sum((r.cost_usd for r in UsageRecord.objects.all()), Decimal(0))
    spent, reserved = quota_spend(cluster.prefix, quota_id=quota.pk, tenant_id=key.tenant.pk)
    assert recorded == Decimal("0.000960")
    assert (spent, reserved) == (960, 0)
    assert spent <= 1_000


def admin_revoke(gateway: GatewayProcess, key_id: int, *, username: str, password: str) -> None:
    """Revoke a key with the admin's "Revoke selected keys" action, as a browser would."""
    with signed_in(gateway.base_url, username, password) as client:
        revoked = client.post(
            "/admin/quotas/apikey/",
            data={
                "action": "revoke_keys",
                "_selected_action": [str(key_id)],
                "index": "0",
                "select_across": "0",
                "csrfmiddlewaretoken": client.cookies["csrftoken"],
            },
        )
        assert revoked.status_code == 302, revoked.text[:2000]


def test_key_revoked_through_one_instance_is_refused_by_the_others_within_a_second(cluster, setup):
    key = setup("tenants:\n  - name: revoke-tenant\n", "revoke-tenant")
    password = secrets.token_urlsafe(12)
    User.objects.create_superuser("root", "root@example.com", password)
    assert {r.status_code for r in cluster.fire(key, 3, BODY)} == {200}

    admin_revoke(cluster.gateways[0], key.key_id, username="root", password=password)
    revoked_at = time.monotonic()

    def refused_by_others() -> bool:
        return all(
            httpx.post(
                f"{gateway.base_url}/v1/chat/completions",
                headers={"Authorization": f"Bearer {key.raw}"},
                json=BODY,
                timeout=5,
            ).status_code
            == 401
            for gateway in cluster.gateways[1:]
        )

    wait_for(refused_by_others, timeout=1.0, interval=0.02)
    assert time.monotonic() - revoked_at < 1.0


def test_a_stream_cut_by_its_client_releases_its_slot_on_every_gateway(cluster, setup):
    key = setup(
        """
tiers:
  - name: single
    max_parallel: 1
    tokens_per_minute: 100000
tenants:
  - name: stream-tenant
    tier: single
""",
        "stream-tenant",
    )
    cluster.upstream.default = Reply(content=" ".join(["word"] * 50), chunk_delay=0.1, usage=FakeUsage(8, 50))
    headers = {"Authorization": f"Bearer {key.raw}"}
    first, second = (f"{g.base_url}/v1/chat/completions" for g in cluster.gateways[:2])

    with httpx.Client(timeout=10) as client:
        with client.stream("POST", first, headers=headers, json={**BODY, "stream": True}) as stream:
            assert stream.status_code == 200
            assert stream.headers["x-ratelimit-limit-tokens"] == "100000"
            chunks = stream.iter_bytes()  # held: dropping the iterator would close the response
            next(chunks)
            busy = client.post(second, headers=headers, json=BODY)
            assert busy.status_code == 429
            assert "in flight" in busy.json()["error"]["message"]
        # The client went away mid-stream: the gateway cancels the upstream call, records what
        # was streamed and frees the slot.
        cluster.upstream.default = Reply(usage=FakeUsage(8, 26))
        wait_for(lambda: client.post(second, headers=headers, json=BODY).status_code == 200, timeout=3)
    wait_for(lambda: UsageRecord.objects.filter(client_disconnected=True).count() == 1)
