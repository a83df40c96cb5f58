"""Deployment health end to end: a half-open breaker lets exactly one probe through at a time;
``least_latency`` moves traffic off a deployment made slow and back once it recovers; the
admin's routing overview shows each deployment's breaker, latency and calls, for every
instance through Redis and for the process itself without it."""

from __future__ import annotations

import secrets
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.conftest import GatewayProcess, signed_in, wait_for
from tests.e2e.test_routing import breaker_state, two_deployments, with_upstreams
from tests.fakes.openai_upstream import ErrorReply, Reply

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PRIMARY, SECONDARY = "upstream-a/primary-model", "upstream-b/secondary-model"
DOWN = ErrorReply(503, "down", type="server_error")


def client_for(gateway: GatewayProcess, raw_key: str) -> httpx.Client:
    return httpx.Client(base_url=gateway.base_url, headers={"Authorization": f"Bearer {raw_key}"}, timeout=30)


def chat(client: httpx.Client) -> httpx.Response:
    body = {"model": "chat-ha", "messages": [{"role": "user", "content": "hi"}]}
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    return response


def served_by(response: httpx.Response) -> str:
    return response.headers["x-gateway-deployment"]


def test_a_half_open_breaker_lets_one_probe_through_at_a_time(
    upstreams, gateway_factory, configure, make_key
):
    a, _ = upstreams
    configure(with_upstreams(two_deployments("fallback"), upstreams))
    key = make_key("acme")
    gateway = gateway_factory(
        GATEWAY_BREAKER_FAILURES="2", GATEWAY_BREAKER_SUCCESSES="1", GATEWAY_BREAKER_OPEN_SECONDS="1"
    )
    with client_for(gateway, key.raw) as client:
        a.enqueue(DOWN, DOWN)
        assert [served_by(chat(client)) for _ in range(2)] == [SECONDARY] * 2
        skipped = chat(client)  # open: the primary is not even tried
        assert (served_by(skipped), skipped.headers["x-gateway-attempts"]) == (SECONDARY, "1")
        assert len(a.requests) == 2
        # Its one-second open period passes: the gateway's own board says half-open.
        wait_for(lambda: breaker_state(gateway, PRIMARY) == 1, timeout=5)

        # Half-open: the probe is slow; five requests at once, one of them probes.
        a.enqueue(Reply(delay=2.0))  # long enough for the other four to arrive while it is out
        barrier = threading.Barrier(5)

        def one(_: int) -> str:
            barrier.wait()
            return served_by(chat(client))

        with ThreadPoolExecutor(5) as pool:
            burst = list(pool.map(one, range(5)))

        assert Counter(burst) == {PRIMARY: 1, SECONDARY: 4}
        assert len(a.requests) == 3
        # The probe succeeded (one success closes it here): the primary serves again.
        assert served_by(chat(client)) == PRIMARY
        assert len(a.requests) == 4


def test_least_latency_moves_off_a_slow_deployment_and_back_after_it_recovers(
    upstreams, gateway_factory, configure, make_key
):
    a, b = upstreams
    configure(with_upstreams(two_deployments("least_latency"), upstreams))
    key = make_key("acme")
    # A random pick 30% of the time (each deployment 15%), so recovery is seen within a few requests.
    gateway = gateway_factory(GATEWAY_ROUTING_EXPLORATION="0.3")
    a.default = Reply(delay=0.1)
    with client_for(gateway, key.raw) as client:
        for _ in range(4):  # both measured
            chat(client)
        slow_phase = Counter(served_by(chat(client)) for _ in range(40))
        # Expected: 6 of 40 on the slow one (exploration only); 15 is four standard deviations.
        assert slow_phase[PRIMARY] <= 15
        assert slow_phase[SECONDARY] >= 25

        a.default, b.default = Reply(), Reply(delay=0.1)
        recent: list[str] = []
        for _ in range(100):
            recent.append(served_by(chat(client)))
            if recent[-10:].count(PRIMARY) >= 8:
                break
        assert recent[-10:].count(PRIMARY) >= 8, Counter(recent)


def stats_by_deployment(payload: dict) -> dict[str, dict]:
    return {f"{row['provider']}/{row['upstream_model']}": row for row in payload["deployments"]}


def test_routing_overview_adds_up_every_instance_through_redis(
    upstreams, gateway_factory, configure, make_key, redis_prefix, settings
):
    a, _ = upstreams
    configure(with_upstreams(two_deployments("fallback"), upstreams))
    key = make_key("acme")
    env = {"GATEWAY_BREAKER_FAILURES": "2", "GATEWAY_ROUTING_SYNC_SECONDS": "0.1"}
    first, second = gateway_factory(**env), gateway_factory(**env)
    with client_for(first, key.raw) as one, client_for(second, key.raw) as two:
        # Each instance's router (and its sync task) starts with its first request.
        assert [served_by(chat(one)), served_by(chat(two))] == [PRIMARY] * 2
        a.enqueue(DOWN, DOWN)
        assert [served_by(chat(one)) for _ in range(2)] == [SECONDARY] * 2
        wait_for(lambda: breaker_state(second, PRIMARY) == 2)  # the second instance learned it
        assert [served_by(chat(two)) for _ in range(3)] == [SECONDARY] * 3

    settings.GATEWAY_REDIS_PREFIX = redis_prefix
    password = secrets.token_urlsafe(12)
    User.objects.create_superuser("root", "root@example.com", password)
    admin = Client()
    assert admin.get("/admin/routing/stats.json").status_code == 302  # staff only
    admin.login(username="root", password=password)

    def synced() -> dict[str, dict]:
        return stats_by_deployment(admin.get("/admin/routing/stats.json?minutes=5").json())

    wait_for(lambda: synced()[SECONDARY]["calls"] == 5)
    rows = synced()
    assert {k: (r["breaker"], r["calls"], r["failures"], r["error_rate"]) for k, r in rows.items()} == {
        PRIMARY: ("open", 4, 2, 0.5),
        SECONDARY: ("closed", 5, 0, 0.0),
    }
    assert rows[PRIMARY]["latency_ms"] > 0 and rows[PRIMARY]["mean_latency_ms"] > 0
    assert rows[SECONDARY]["latency_ms"] > 0 and rows[SECONDARY]["mean_latency_ms"] > 0
    page = admin.get("/admin/routing/?minutes=5").content.decode()
    assert 'id="source">redis<' in page
    assert page.count('class="breaker"><span style="color:#ba2121">open</span>') == 1


def test_routing_overview_without_redis_shows_the_process_own_view(
    upstreams, gateway_factory, configure, make_key
):
    a, _ = upstreams
    configure(with_upstreams(two_deployments("fallback"), upstreams))
    key = make_key("acme")
    gateway = gateway_factory(REDIS_URL="")
    with client_for(gateway, key.raw) as client:
        a.enqueue(DOWN)
        assert [served_by(chat(client)) for _ in range(2)] == [SECONDARY, PRIMARY]
    password = secrets.token_urlsafe(12)
    User.objects.create_superuser("root", "root@example.com", password)
    with signed_in(gateway.base_url, "root", password) as browser:
        payload = browser.get("/admin/routing/stats.json").json()

    assert payload["source"] == "process"
    assert payload["window_minutes"] == 15
    rows = stats_by_deployment(payload)
    assert {k: (r["breaker"], r["calls"], r["failures"], r["error_rate"]) for k, r in rows.items()} == {
        PRIMARY: ("closed", 2, 1, 0.5),
        SECONDARY: ("closed", 1, 0, 0.0),
    }


def test_a_cached_answer_is_served_while_every_deployment_is_unavailable(
    upstreams, gateway_factory, configure, make_key
):
    a, _ = upstreams
    configure(
        f"""
providers:
  - {{name: upstream-a, kind: openai, base_url: "{a.base_url}"}}
models:
  - name: chat-cached
    cache: {{ttl_seconds: 300, key: full_request}}
    deployments:
      - {{provider: upstream-a, model: only-model, free: true}}
"""
    )
    key = make_key("acme")
    gateway = gateway_factory(GATEWAY_BREAKER_FAILURES="2", GATEWAY_BREAKER_OPEN_SECONDS="120")

    def ask(content: str, **headers: str) -> httpx.Response:
        body = {"model": "chat-cached", "messages": [{"role": "user", "content": content}]}
        return client.post("/v1/chat/completions", json=body, headers=headers)

    with client_for(gateway, key.raw) as client:
        stored = ask("cached question")
        assert (stored.status_code, stored.headers["x-gateway-cache"]) == (200, "miss")
        a.enqueue(DOWN, DOWN)
        assert [ask("other", **{"cache-control": "no-store"}).status_code for _ in range(2)] == [502, 502]
        assert len(a.requests) == 3

        hit = ask("cached question")
        refused = ask("a question never asked")
        bypassing = ask("cached question", **{"cache-control": "no-cache"})

    assert (hit.status_code, hit.headers["x-gateway-cache"], hit.headers["x-gateway-attempts"]) == (
        200,
        "hit",
        "0",
    )
    assert hit.content == stored.content
    for response in (refused, bypassing):
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "no_deployment_available"
    assert len(a.requests) == 3  # the open breaker kept every one of them from the upstream
