"""Price versions in the database: ``applyconfig``'s ``prices:`` section and the shipped default
prices, and the usage path billing each request at the version in force when it started
(stored on the record), cache hits at zero cost with the cost saved."""

from __future__ import annotations

import datetime as dt
import io
import time
from decimal import Decimal

import pytest
import yaml
from django.core.management import call_command

from accounting.models import DeploymentPrice, UsageRecord
from accounting.prices import DEFAULT_PRICES_PATH, load_price_table
from accounting.recorder import UsageWriter
from gateway_site.api.exchange import Exchange
from gateway_site.api.outcome import Outcome
from gateway_site.api.settle import AdmittedRequest, finish
from gateway_site.console.declarative import parse_config
from gateway_site.runtime.usage_sink import UsageSink
from providers.catalog import load_catalog
from providers.kinds.registry import NAMES
from providers.models import Deployment
from providers.types import Usage
from quotas.authentication.registry import load_registry
from quotas.limiter import Limiter
from quotas.revision import bump_revision, current_revision
from quotas.stores.local import LocalStore
from routing.router import RoutePlan
from tests.conftest import openai_provider_yaml

pytestmark = pytest.mark.django_db

PRICES = """
prices:
  - provider: fake  # a provider name
    model: gpt-4o-mini-upstream
    effective_from: 2025-01-01
    input_per_million: "1"
    output_per_million: "2"
  - provider: openai  # a provider kind
    model: gpt-4o-mini-upstream
    effective_from: "2025-03-01T12:00:00Z"
    input_per_million: "3"
    output_per_million: "4"
    cached_input_per_million: "0.5"
"""


@pytest.fixture
def deployment(configure) -> Deployment:
    configure(openai_provider_yaml(name="fake", base_url="http://127.0.0.1:9"))
    return Deployment.objects.get()


def test_prices_section_creates_versions_for_matching_deployments_idempotently(deployment, configure):
    from gateway_site.console.declarative import apply_config

    report = apply_config(parse_config(PRICES))
    assert len(report.created) == 2
    rows = list(
        DeploymentPrice.objects.order_by("effective_from").values_list(
            "deployment_id", "effective_from", "input_per_million", "cached_input_per_million", "source"
        )
    )
    assert rows == [
        (deployment.pk, dt.datetime(2025, 1, 1, tzinfo=dt.UTC), Decimal("1"), None, "config"),
        (deployment.pk, dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC), Decimal("3"), Decimal("0.5"), "config"),
    ]
    assert not apply_config(parse_config(PRICES)).changed
    changed = apply_config(
        parse_config(PRICES.replace('output_per_million: "2"', 'output_per_million: "2.5"'))
    )
    assert changed.updated == ["price gpt-4o-mini -> fake/gpt-4o-mini-upstream from 2025-01-01 00:00"]
    assert DeploymentPrice.objects.count() == 2
    first = DeploymentPrice.objects.order_by("effective_from").first()
    assert (first.output_per_million, first.input_per_million) == (Decimal("2.5"), Decimal("1"))


def test_the_shipped_default_prices_parse_and_apply_by_provider_kind(configure):
    text = DEFAULT_PRICES_PATH.read_text()
    entries = parse_config(text).prices
    assert len(entries) >= 20
    assert {e.provider for e in entries} <= set(NAMES)
    assert {"openai", "anthropic", "gemini", "bedrock"} <= {e.provider for e in entries}
    configure(openai_provider_yaml(name="oa", base_url="http://127.0.0.1:9", model="gpt-4o"))
    Deployment.objects.update(upstream_model="gpt-4o")

    out = io.StringIO()
    call_command("applyconfig", "--default-prices", stdout=out)
    assert out.getvalue() == "created price gpt-4o -> oa/gpt-4o from 2024-10-01 00:00\n"
    version = DeploymentPrice.objects.get()
    assert (version.input_per_million, version.output_per_million, version.cached_input_per_million) == (
        Decimal("2.50"),
        Decimal("10.00"),
        Decimal("1.25"),
    )
    assert version.source == "defaults"
    out = io.StringIO()
    call_command("applyconfig", "--default-prices", stdout=out)
    assert out.getvalue() == "no changes\n"
    assert yaml.safe_load(text)["prices"][0]["provider"] == "openai"


def _record(tmp_path, key, *, started: float, usage: Usage, cache_hit: bool = False) -> UsageRecord:
    writer = UsageWriter(flush_seconds=0.01, batch_size=10, spool_path=tmp_path / "spool.jsonl")
    limiter = Limiter(LocalStore(), fail_open=True, on_alert=print)
    prices = load_price_table()
    sink = UsageSink(
        writer=writer, limiter=lambda: limiter, prices=lambda: prices, redis_prefix="x:", outbox=False
    )
    route = load_catalog().models["gpt-4o-mini"]
    context = load_registry().authenticate(key.raw)
    exchange = Exchange(request_id=f"req_{time.monotonic_ns()}", client_request_id="", started_wall=started)
    admitted = AdmittedRequest(
        sink=sink,
        exchange=exchange,
        key=context,
        model="gpt-4o-mini",
        route_plan=RoutePlan(deployment=route.deployments[0]),
        body={},
    )
    finish(exchange, Outcome(usage=usage, cache_hit=cache_hit), request=admitted)
    writer.close()
    return UsageRecord.objects.get(request_id=exchange.request_id)


@pytest.mark.django_db(transaction=True)
def test_each_request_is_billed_at_the_version_in_force_when_it_started(deployment, make_key, tmp_path):
    from gateway_site.console.declarative import apply_config

    apply_config(parse_config(PRICES))
    key = make_key()
    usage = Usage(prompt_tokens=1000, completion_tokens=100, cached_tokens=400)
    first, second = DeploymentPrice.objects.order_by("effective_from")

    before = _record(tmp_path, key, started=dt.datetime(2024, 6, 1, tzinfo=dt.UTC).timestamp(), usage=usage)
    # No version yet: the deployment's own prices (0.15 / 0.60 / cached 0.075).
    assert before.price_version_id is None
    assert before.cost_usd == (600 * Decimal("0.15") + 400 * Decimal("0.075") + 100 * Decimal("0.60")) / 10**6

    january = _record(tmp_path, key, started=dt.datetime(2025, 2, 1, tzinfo=dt.UTC).timestamp(), usage=usage)
    assert january.price_version_id == first.pk
    assert january.cost_usd == Decimal("0.0012")  # 1000 x 1 + 100 x 2 (no cached price: input)

    march = _record(tmp_path, key, started=dt.datetime(2025, 3, 2, tzinfo=dt.UTC).timestamp(), usage=usage)
    assert march.price_version_id == second.pk
    assert march.cost_usd == Decimal("0.0024")  # 600 x 3 + 400 x 0.5 + 100 x 4

    # A later price change never touches what was billed.
    DeploymentPrice.objects.update(input_per_million=Decimal("99"))
    assert UsageRecord.objects.get(pk=march.pk).cost_usd == Decimal("0.0024")


@pytest.mark.django_db(transaction=True)
def test_a_cache_hit_is_recorded_at_zero_cost_with_the_cost_it_saved(deployment, make_key, tmp_path):
    key = make_key()
    usage = Usage(prompt_tokens=1000, completion_tokens=100)
    hit = _record(tmp_path, key, started=time.time(), usage=usage, cache_hit=True)
    assert (hit.cache_hit, hit.cost_usd) == (True, Decimal("0"))
    assert hit.cost_saved_usd == (1000 * Decimal("0.15") + 100 * Decimal("0.60")) / 10**6
    assert (hit.prompt_tokens, hit.completion_tokens) == (1000, 100)


def test_adding_and_deleting_a_price_in_the_admin_reloads_every_gateway(admin_client):
    bump_revision()  # the counter row exists, as in any configured gateway
    before = current_revision()
    response = admin_client.post(
        "/admin/accounting/deploymentprice/add/",
        {
            "deployment_id": "7",
            "deployment_label": "m -> p/up",
            "effective_from_0": "2025-01-01",
            "effective_from_1": "00:00:00",
            "input_per_million": "1.5",
            "output_per_million": "2",
            "cached_input_per_million": "",
            "cache_write_per_million": "",
            "source": "admin",
        },
    )
    assert response.status_code == 302, response.content
    price = DeploymentPrice.objects.get(deployment_id=7)
    assert price.input_per_million == Decimal("1.5")
    assert current_revision() == before + 1
    response = admin_client.post(f"/admin/accounting/deploymentprice/{price.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not DeploymentPrice.objects.exists()
    assert current_revision() == before + 2
