"""What ``/metrics`` tells about tenants, under both settings of ``GATEWAY_METRICS_TENANT_LABELS``:
by default tenant names (refusal counters) and every model; with ``false`` no tenant label, and a
model (or deployment) only when every tenant may use it, the others merged as ``(restricted)``."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client.parser import text_string_to_metric_families

from gateway_site.api.views.metrics import tenant_blind
from gateway_site.observability import metrics
from gateway_site.observability.exposition import exposition
from gateway_site.observability.metrics import ScrapeState, TenantBlind
from gateway_site.runtime.snapshot import ConfigSnapshot, load_snapshot
from quotas.models import ModelAccessRule, Tenant

pytestmark = pytest.mark.django_db

CONFIG = """
providers:
  - {name: oa, kind: openai, base_url: "http://127.0.0.1:9/v1"}
  - {name: ft, kind: openai, base_url: "http://127.0.0.1:9/v1"}
  - {name: mock, kind: mock}
models:
  - name: gpt-4o
    deployments: [{provider: oa, model: gpt-4o-up, input_per_million: "2.5", output_per_million: "10"}]
  - name: acme-ft
    deployments: [{provider: ft, model: acme-ft-up, input_per_million: "3", output_per_million: "12"}]
  - name: mock-echo
    deployments: [{provider: mock, model: mock-echo, free: true}]
"""
BREAKERS = {"oa/gpt-4o-up": ("oa", 0), "ft/acme-ft-up": ("ft", 2), "mock/mock-echo": ("mock", 1)}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def snapshot(configure, make_key) -> ConfigSnapshot:
    """acme may use gpt-* and acme-* (not mock-echo); beta anything but acme-*; gamma has no key."""
    configure(CONFIG)
    acme, beta = make_key("acme").tenant, make_key("beta").tenant
    ModelAccessRule.objects.create(tenant=acme, pattern="gpt-*", effect="allow")
    ModelAccessRule.objects.create(tenant=acme, pattern="acme-*", effect="allow")
    ModelAccessRule.objects.create(tenant=beta, pattern="acme-*", effect="deny")
    gamma = Tenant.objects.create(name="gamma")
    ModelAccessRule.objects.create(tenant=gamma, pattern="*", effect="deny")
    return load_snapshot()


def scrape(settings, snapshot: ConfigSnapshot, *, tenant_labels: bool) -> Samples:
    blind = None if tenant_labels else tenant_blind(snapshot)
    body, content_type = exposition(ScrapeState(breakers=BREAKERS), blind=blind, accept="")
    assert content_type.startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def deltas(before: Samples, after: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {
        labels: value - before.get((sample, labels), 0.0)
        for (sample, labels), value in after.items()
        if sample == name and value != before.get((sample, labels), 0.0)
    }


def refuse_four() -> None:
    for tenant, model in (("acme", "acme-ft"), ("beta", "mock-echo"), ("acme", "gpt-4o"), ("beta", "gpt-4o")):
        metrics.observe_refusal(tenant=tenant, model=model, quota=False)


def test_the_open_models_are_those_every_tenant_with_a_key_may_use(snapshot):
    assert tenant_blind(snapshot) == TenantBlind(
        open_models=frozenset({"gpt-4o"}), open_deployments=frozenset({"oa/gpt-4o-up"})
    )


def test_by_default_tenants_and_every_model_are_shown(settings, snapshot):
    before = scrape(settings, snapshot, tenant_labels=True)
    refuse_four()
    after = scrape(settings, snapshot, tenant_labels=True)

    assert deltas(before, after, "llm_gateway_rate_limit_exceeded_total") == {
        frozenset({("tenant", "acme"), ("model", "acme-ft")}): 1.0,
        frozenset({("tenant", "beta"), ("model", "mock-echo")}): 1.0,
        frozenset({("tenant", "acme"), ("model", "gpt-4o")}): 1.0,
        frozenset({("tenant", "beta"), ("model", "gpt-4o")}): 1.0,
    }
    assert (
        after[("llm_gateway_breaker_state", frozenset({("provider", "ft"), ("deployment", "ft/acme-ft-up")}))]
        == 2
    )


def test_without_tenant_labels_no_tenant_and_no_restricted_model_is_told_apart(settings, snapshot):
    before = scrape(settings, snapshot, tenant_labels=False)
    refuse_four()
    metrics.get_metrics().requests("ft", "acme-ft", "200", "chat.completions").inc()
    metrics.get_metrics().requests("mock", "mock-echo", "200", "chat.completions").inc(2)
    after = scrape(settings, snapshot, tenant_labels=False)

    assert deltas(before, after, "llm_gateway_rate_limit_exceeded_total") == {
        frozenset({("model", "(restricted)")}): 2.0,
        frozenset({("model", "gpt-4o")}): 2.0,
    }
    assert deltas(before, after, "llm_gateway_requests_total") == {
        frozenset(
            {
                ("provider", "ft"),
                ("model", "(restricted)"),
                ("status", "200"),
                ("endpoint", "chat.completions"),
            }
        ): 1.0,
        frozenset(
            {
                ("provider", "mock"),
                ("model", "(restricted)"),
                ("status", "200"),
                ("endpoint", "chat.completions"),
            }
        ): 2.0,
    }
    breakers = {
        dict(labels)["deployment"]: v for (n, labels), v in after.items() if n == "llm_gateway_breaker_state"
    }
    assert breakers == {"oa/gpt-4o-up": 0, "ft/(restricted)": 2, "mock/(restricted)": 1}
    shown = {value for _, labels in after for name, value in labels if name != "le"}
    assert not {"acme", "beta", "acme-ft", "mock-echo", "acme-ft-up"} & shown
    assert not any(name == "tenant" for _, labels in after for name, _ in labels)


def test_merged_samples_add_counters_and_histograms_and_keep_the_highest_gauge():
    registry = CollectorRegistry()
    duration = Histogram("d", "d", ("model",), registry=registry, buckets=(1.0,))
    duration.labels("a").observe(0.5)
    duration.labels("b").observe(2.0)
    state = Gauge("g", "g", ("deployment",), registry=registry)
    state.labels("p/a-up").set(1)
    state.labels("p/b-up").set(2)
    blind = metrics.TenantBlindCollector([registry], TenantBlind(frozenset(), frozenset()))

    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for m in blind.collect() for s in m.samples}

    assert samples[("d_bucket", (("le", "1.0"), ("model", "(restricted)")))] == 1
    assert samples[("d_bucket", (("le", "+Inf"), ("model", "(restricted)")))] == 2
    assert samples[("d_count", (("model", "(restricted)"),))] == 2
    assert samples[("d_sum", (("model", "(restricted)"),))] == 2.5
    assert samples[("g", (("deployment", "p/(restricted)"),))] == 2
