"""The metrics module and the /metrics protection helpers, in process: exact counter deltas
for a known usage event and its upstream tries, and the networks and token checks."""

from __future__ import annotations

import ipaddress
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured

from accounting.recorder import UsageEvent
from gateway_site.env import env_networks
from gateway_site.observability import metrics
from gateway_site.observability.exposition import client_allowed, token_accepted
from providers.types import DeploymentConfig, ProviderConfig
from routing.router import CallRecord

DEFAULT_NETWORKS = "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16"


def sample(name: str, **labels: str) -> float:
    value = metrics.get_metrics().registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def deployment(provider: str, upstream_model: str, id_: int) -> DeploymentConfig:
    return DeploymentConfig(
        id=id_,
        provider=ProviderConfig(name=provider, kind="openai", base_url="http://x"),
        upstream_model=upstream_model,
    )


def test_observe_finish_counts_the_event_and_each_upstream_try():
    primary, backup = deployment("pa", "m-up", 1), deployment("pb", "b-up", 2)
    event = UsageEvent(
        request_id="req_1", client_request_id="", created_at=0.0, tenant_id=1, tenant_name="acme",
        key_id=7, key_prefix="sk-gw-abc", model="unit-model", status=200, latency_ms=250.0,
        provider="pb", prompt_tokens=11, completion_tokens=4, cached_tokens=3, reasoning_tokens=2,
        cost_usd=Decimal("0.0015"), ttft_ms=80.0,
    )  # fmt: skip
    tries = [
        CallRecord(deployment=primary, retry=0, fallback=False, started=0.0, seconds=0.01, status=502),
        CallRecord(deployment=primary, retry=1, fallback=False, started=0.0, seconds=0.02, status=502),
        CallRecord(deployment=backup, retry=0, fallback=True, started=0.0, seconds=0.2, status=200),
    ]
    names = [
        (
            "llm_gateway_requests_total",
            {"provider": "pb", "model": "unit-model", "status": "200", "endpoint": "chat.completions"},
        ),
        ("llm_gateway_tokens_total", {"provider": "pb", "model": "unit-model", "type": "prompt"}),
        ("llm_gateway_tokens_total", {"provider": "pb", "model": "unit-model", "type": "cached"}),
        ("llm_gateway_tokens_total", {"provider": "pb", "model": "unit-model", "type": "reasoning"}),
        ("llm_gateway_cost_dollars_total", {"provider": "pb", "model": "unit-model"}),
        ("llm_gateway_request_duration_seconds_sum", {"provider": "pb", "model": "unit-model"}),
        ("llm_gateway_time_to_first_token_seconds_count", {"provider": "pb", "model": "unit-model"}),
        ("llm_gateway_upstream_requests_total", {"provider": "pa", "deployment": "pa/m-up", "status": "502"}),
        ("llm_gateway_upstream_requests_total", {"provider": "pb", "deployment": "pb/b-up", "status": "200"}),
        ("llm_gateway_upstream_retries_total", {"provider": "pa", "deployment": "pa/m-up"}),
        ("llm_gateway_upstream_retries_total", {"provider": "pb", "deployment": "pb/b-up"}),
        ("llm_gateway_fallbacks_total", {"model": "unit-model"}),
        ("llm_gateway_overhead_seconds_count", {}),
        ("llm_gateway_active_requests", {}),
    ]
    before = [sample(name, **labels) for name, labels in names]
    metrics.request_started()
    metrics.observe_finish(event, overhead_ms=1.5, calls=tries)
    deltas = [round(sample(name, **labels) - b, 9) for (name, labels), b in zip(names, before, strict=True)]
    assert deltas == [1, 11, 3, 2, 0.0015, 0.25, 1, 2, 1, 1, 0, 1, 1, 0]


def test_untracked_errors_are_counted_once_and_tracked_or_successful_ones_not():
    labels = {"provider": "none", "model": "", "status": "401", "endpoint": "messages"}
    before = sample("llm_gateway_requests_total", **labels)
    metrics.observe_response(tracked=False, model="", status=401, endpoint="messages")
    metrics.observe_response(tracked=False, model="", status=200, endpoint="models")  # not a model request
    metrics.observe_response(tracked=True, model="", status=401, endpoint="messages")
    assert sample("llm_gateway_requests_total", **labels) - before == 1
    assert (
        sample("llm_gateway_requests_total", provider="none", model="", status="200", endpoint="models") == 0
    )


def test_cache_and_redis_error_counters_exist_at_zero_and_count():
    registry = metrics.get_metrics().registry
    exported = [
        *(("llm_gateway_cache_hits_total", {"cache_type": c}) for c in metrics.CACHE_TYPES),
        *(("llm_gateway_cache_misses_total", {"cache_type": c}) for c in metrics.CACHE_TYPES),
        *(("llm_gateway_redis_errors_total", {"component": c}) for c in metrics.REDIS_COMPONENTS),
    ]
    assert [name for name, labels in exported if registry.get_sample_value(name, labels) is None] == []
    hits = sample("llm_gateway_cache_hits_total", cache_type="l1")
    misses = sample("llm_gateway_cache_misses_total", cache_type="l1")
    errors = sample("llm_gateway_redis_errors_total", component="routing_sync")
    metrics.observe_cache("l1", hit=True)
    metrics.redis_error_hook("routing_sync")()
    assert sample("llm_gateway_cache_hits_total", cache_type="l1") - hits == 1
    assert sample("llm_gateway_cache_misses_total", cache_type="l1") - misses == 0
    assert sample("llm_gateway_redis_errors_total", component="routing_sync") - errors == 1


def test_allowed_networks_default_star_and_bad_values(monkeypatch):
    monkeypatch.delenv("GATEWAY_METRICS_ALLOWED_NETWORKS", raising=False)
    default = env_networks("GATEWAY_METRICS_ALLOWED_NETWORKS", DEFAULT_NETWORKS)
    assert [
        client_allowed(a, default) for a in ("127.0.0.1", "::1", "10.2.3.4", "172.31.0.1", "192.168.1.1")
    ] == [True] * 5
    assert [client_allowed(a, default) for a in ("8.8.8.8", "172.32.0.1", "2001:db8::1", "", "unix")] == [
        False
    ] * 5
    assert client_allowed("::ffff:10.1.2.3", default) is True  # IPv4-mapped
    monkeypatch.setenv("GATEWAY_METRICS_ALLOWED_NETWORKS", "*")
    everything = env_networks("GATEWAY_METRICS_ALLOWED_NETWORKS", DEFAULT_NETWORKS)
    assert everything == (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
    assert client_allowed("8.8.8.8", everything) and client_allowed("2001:db8::1", everything)
    monkeypatch.setenv("GATEWAY_METRICS_ALLOWED_NETWORKS", "10.0.0.0/8, not-a-network")
    with pytest.raises(ImproperlyConfigured, match="GATEWAY_METRICS_ALLOWED_NETWORKS"):
        env_networks("GATEWAY_METRICS_ALLOWED_NETWORKS", DEFAULT_NETWORKS)


def test_bearer_token_check():
    assert token_accepted(None, "") is True  # no token configured
    assert token_accepted("Bearer s3cret", "s3cret") is True
    assert token_accepted("bearer s3cret", "s3cret") is True
    assert [token_accepted(h, "s3cret") for h in (None, "", "Bearer", "Bearer s3cre", "Basic s3cret")] == [
        False
    ] * 5
