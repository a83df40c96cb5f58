"""A deployment is priced or declared free: ``applyconfig`` and the admin refuse one that would
serve every request for $0 unannounced, naming it; the shipped prices cover the current model
ids and their aliases; the built-in mock is free by declaration."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.urls import reverse

from accounting.models import DeploymentPrice
from accounting.prices import DEFAULT_PRICES_PATH
from gateway_site.console.declarative import ConfigError, apply_config, parse_config
from providers.models import Deployment, Provider, PublicModel
from quotas.revision import bump_revision, current_revision
from tests.gateway_site.console.test_admin import deployment_fields, inline_management

pytestmark = pytest.mark.django_db

REMEDY = (
    "no price: give each input_per_million / output_per_million, a price version (a prices: entry, "
    "--prices FILE or --default-prices), or declare it free (free: true in applyconfig, Free in the admin)"
)


def config(deployment: str, *, extra: str = "") -> str:
    return f"""
providers:
  - {{name: claude, kind: anthropic}}
  - {{name: oa, kind: openai, base_url: "http://127.0.0.1:9/v1"}}
models:
  - name: sonnet
    deployments:
      - {deployment}
{extra}"""


def command(tmp_path: Path, text: str, *options: str) -> str:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    out = io.StringIO()
    call_command("applyconfig", str(path), *options, stdout=out)
    return out.getvalue()


def refused(tmp_path: Path, text: str, *options: str) -> str:
    bump_revision()
    before = current_revision()
    with pytest.raises(CommandError) as raised:
        command(tmp_path, text, *options)
    assert current_revision() == before
    assert (Deployment.objects.count(), DeploymentPrice.objects.count()) == (0, 0)
    return str(raised.value)


def test_a_deployment_without_price_is_refused_naming_it_and_nothing_is_applied(tmp_path):
    message = refused(tmp_path, config("{provider: claude, model: claude-sonnet-4-5}"))

    assert message == f"nothing applied: deployment sonnet -> claude/claude-sonnet-4-5 has {REMEDY}"
    assert Provider.objects.count() == 0


def test_every_unpriced_deployment_is_named_once():
    text = config(
        "{provider: claude, model: claude-sonnet-4-5}\n"
        '      - {provider: oa, model: gpt-4o, input_per_million: "0", output_per_million: "0"}\n'
        '      - {provider: oa, model: gpt-4o-mini, input_per_million: "0.15", output_per_million: "0.60"}'
    )
    with pytest.raises(ConfigError) as raised:
        apply_config(parse_config(text))
    assert str(raised.value) == (
        f"deployments sonnet -> claude/claude-sonnet-4-5, sonnet -> oa/gpt-4o have {REMEDY}"
    )


def test_the_shipped_default_prices_price_an_undated_alias(tmp_path):
    out = command(tmp_path, config("{provider: claude, model: claude-sonnet-4-5}"), "--default-prices")

    assert out.splitlines()[-1] == "created price sonnet -> claude/claude-sonnet-4-5 from 2025-09-29 00:00"
    version = DeploymentPrice.objects.get()
    assert (
        version.input_per_million,
        version.output_per_million,
        version.cached_input_per_million,
        version.cache_write_per_million,
        version.source,
    ) == (Decimal("3.00"), Decimal("15.00"), Decimal("0.30"), Decimal("3.75"), "defaults")


def test_a_price_file_in_the_same_command_prices_the_deployment(tmp_path):
    prices = tmp_path / "contract.yaml"
    prices.write_text(
        "prices:\n  - {provider: claude, model: my-sonnet, effective_from: 2025-01-01, "
        'input_per_million: "2.4", output_per_million: "12"}\n'
    )
    command(tmp_path, config("{provider: claude, model: my-sonnet}"), "--prices", str(prices))

    assert DeploymentPrice.objects.get().input_per_million == Decimal("2.4")


@pytest.mark.parametrize(
    ("version", "why"),
    [
        ('effective_from: 2099-01-01, input_per_million: "3", output_per_million: "15"', "not in force yet"),
        ('effective_from: 2025-01-01, input_per_million: "0", output_per_million: "0"', "charges nothing"),
    ],
)
def test_a_price_version_prices_only_when_in_force_and_charging(tmp_path, version: str, why: str):
    extra = f"prices:\n  - {{provider: anthropic, model: claude-sonnet-4-5, {version}}}\n"
    message = refused(tmp_path, config("{provider: claude, model: claude-sonnet-4-5}", extra=extra))
    assert message.endswith(f"deployment sonnet -> claude/claude-sonnet-4-5 has {REMEDY}"), why


def test_a_version_in_force_prices_a_deployment_with_zero_own_prices(tmp_path):
    extra = (
        "prices:\n  - {provider: anthropic, model: claude-sonnet-4-5, effective_from: 2025-01-01, "
        'input_per_million: "3", output_per_million: "15"}\n'
    )
    command(tmp_path, config("{provider: claude, model: claude-sonnet-4-5}", extra=extra))
    assert Deployment.objects.get().input_per_million == Decimal("0")


def test_a_free_deployment_is_accepted_and_gets_no_price_versions(tmp_path):
    command(tmp_path, config("{provider: claude, model: claude-sonnet-4-5, free: true}"), "--default-prices")

    deployment = Deployment.objects.get()
    assert (deployment.free, deployment.input_per_million, deployment.output_per_million) == (
        True,
        Decimal("0"),
        Decimal("0"),
    )
    assert DeploymentPrice.objects.count() == 0


def test_a_free_deployment_with_prices_is_refused(tmp_path):
    text = config('{provider: claude, model: claude-sonnet-4-5, free: true, input_per_million: "3"}')
    message = refused(tmp_path, text)
    assert message.endswith("models.0.deployments.0: Value error, a free deployment takes no prices")


def test_an_unpriced_deployment_already_stored_blocks_any_apply_until_fixed(tmp_path):
    provider = Provider.objects.create(name="oa", kind="openai", base_url="http://127.0.0.1:9/v1")
    model = PublicModel.objects.create(name="legacy")
    Deployment.objects.create(model=model, provider=provider, upstream_model="gpt-4o")
    tiers = "tiers:\n  - name: standard\n    requests_per_minute: 60\n"

    with pytest.raises(CommandError) as raised:
        command(tmp_path, tiers)
    assert str(raised.value) == f"nothing applied: deployment legacy -> oa/gpt-4o has {REMEDY}"

    Deployment.objects.update(enabled=False)  # a disabled deployment serves nothing: not checked
    assert command(tmp_path, tiers) == "created tier standard\n"


def test_setupdemo_declares_the_mock_free():
    call_command("setupdemo", stdout=io.StringIO())
    deployment = Deployment.objects.get()
    assert (deployment.provider.kind, deployment.free, deployment.input_per_million) == ("mock", True, 0)


def test_the_migration_declares_existing_mock_deployments_free():
    migration = __import__("providers.migrations.0004_deployment_free", fromlist=["declare_mock_free"])
    mock = Provider.objects.create(name="mock", kind="mock")
    oa = Provider.objects.create(name="oa", kind="openai", base_url="http://127.0.0.1:9/v1")
    model = PublicModel.objects.create(name="m")
    echo = Deployment.objects.create(model=model, provider=mock, upstream_model="mock-echo")
    paid_mock = Deployment.objects.create(
        model=model, provider=mock, upstream_model="priced", input_per_million=Decimal("1")
    )
    unpriced = Deployment.objects.create(model=model, provider=oa, upstream_model="gpt-4o")

    migration.declare_mock_free(apps, None)

    assert {d.pk: d.free for d in Deployment.objects.all()} == {
        echo.pk: True,
        paid_mock.pk: False,
        unpriced.pk: False,
    }


# The ids the shipped prices must cover: current models and their undated aliases.
COVERED = [
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini"),
    ("openai", "gpt-4.1"),
    ("openai", "gpt-4.1-mini"),
    ("openai", "o3"),
    ("openai", "o4-mini"),
    ("openai", "gpt-5"),
    ("openai", "gpt-5-mini"),
    ("openai", "text-embedding-3-small"),
    ("openai", "text-embedding-3-large"),
    ("azure", "gpt-4o"),
    ("azure", "text-embedding-3-small"),
    ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-sonnet-4-5-20250929"),
    ("anthropic", "claude-opus-4-1"),
    ("anthropic", "claude-opus-4-1-20250805"),
    ("anthropic", "claude-haiku-4-5"),
    ("anthropic", "claude-opus-4-5"),
    ("anthropic", "claude-sonnet-4-0"),
    ("anthropic", "claude-sonnet-4-20250514"),
    ("gemini", "gemini-2.5-pro"),
    ("gemini", "gemini-2.5-flash"),
    ("gemini", "gemini-2.5-flash-lite"),
    ("gemini", "gemini-embedding-001"),
    ("bedrock", "anthropic.claude-sonnet-4-5-20250929-v1:0"),
    ("bedrock", "anthropic.claude-haiku-4-5-20251001-v1:0"),
    ("bedrock", "amazon.titan-embed-text-v2:0"),
]


@pytest.mark.parametrize(("kind", "model"), COVERED)
def test_the_shipped_prices_cover_current_ids_and_aliases(kind: str, model: str):
    entries = [
        e
        for e in parse_config(DEFAULT_PRICES_PATH.read_text()).prices
        if (e.provider, e.model) == (kind, model)
    ]
    now = dt.datetime.now(dt.UTC)
    in_force = max((e for e in entries if e.moment() <= now), key=lambda e: e.moment())
    assert in_force.input_per_million > 0


def test_the_shipped_prices_record_a_price_change_as_a_later_version():
    o3 = sorted(
        (
            e
            for e in parse_config(DEFAULT_PRICES_PATH.read_text()).prices
            if (e.provider, e.model) == ("openai", "o3")
        ),
        key=lambda e: e.moment(),
    )
    assert [(e.moment().date(), e.input_per_million, e.output_per_million) for e in o3] == [
        (dt.date(2025, 4, 16), Decimal("10.00"), Decimal("40.00")),
        (dt.date(2025, 6, 10), Decimal("2.00"), Decimal("8.00")),
    ]


# --- the admin ------------------------------------------------------------------------------


def model_payload(provider: Provider, **deployment: str) -> dict[str, str]:
    """The admin's add-model form with one inline deployment of ``claude-sonnet-4-5``, its prices
    the form's initial zeros unless given."""
    fields = {
        **deployment_fields(None, provider),
        "upstream_model": "claude-sonnet-4-5",
        "input_per_million": "0",
        "output_per_million": "0",
        **deployment,
    }
    return {
        "name": "sonnet",
        "description": "",
        "enabled": "on",
        "strategy": "model",
        "fallbacks": "[]",
        "cache_key": "full_request",
        **inline_management("deployments"),
        "deployments-TOTAL_FORMS": "1",
        **{f"deployments-0-{k}": v for k, v in fields.items()},
    }


@pytest.fixture
def claude() -> Provider:
    return Provider.objects.create(name="claude", kind="anthropic")


def test_the_admin_refuses_an_inline_deployment_without_price_naming_it(admin_client, claude):
    response = admin_client.post(
        reverse("admin:providers_publicmodel_add"),
        model_payload(claude),
    )

    assert response.status_code == 200
    assert f"Deployment sonnet -&gt; claude/claude-sonnet-4-5 has {REMEDY}." in response.content.decode()
    assert (PublicModel.objects.count(), Deployment.objects.count()) == (0, 0)


def test_the_admin_saves_a_priced_or_free_deployment(admin_client, claude):
    priced = model_payload(claude, input_per_million="3", output_per_million="15")
    assert admin_client.post(reverse("admin:providers_publicmodel_add"), priced).status_code == 302
    free = {**model_payload(claude, free="on"), "name": "sonnet-free"}
    assert admin_client.post(reverse("admin:providers_publicmodel_add"), free).status_code == 302

    assert sorted(Deployment.objects.values_list("model__name", "free", "input_per_million")) == [
        ("sonnet", False, Decimal("3")),
        ("sonnet-free", True, Decimal("0")),
    ]


def test_the_admin_refuses_a_free_deployment_with_prices(admin_client, claude):
    response = admin_client.post(
        reverse("admin:providers_publicmodel_add"), model_payload(claude, free="on", input_per_million="3")
    )

    assert response.status_code == 200
    assert "A free deployment takes no prices: clear them, or untick Free." in response.content.decode()
    assert Deployment.objects.count() == 0


def test_the_admin_accepts_zero_own_prices_under_a_version_in_force(admin_client, claude):
    model = PublicModel.objects.create(name="sonnet")
    deployment = Deployment.objects.create(model=model, provider=claude, upstream_model="claude-sonnet-4-5")
    data = {
        **deployment_fields(model, claude),
        "upstream_model": "claude-sonnet-4-5",
        "priority": "2",
        "input_per_million": "0",
        "output_per_million": "0",
    }
    url = reverse("admin:providers_deployment_change", args=[deployment.pk])
    refused = admin_client.post(url, data)
    assert refused.status_code == 200
    assert "Deployment sonnet -&gt; claude/claude-sonnet-4-5 has no price" in refused.content.decode()

    DeploymentPrice.objects.create(
        deployment_id=deployment.pk,
        effective_from=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        input_per_million=Decimal("3"),
        output_per_million=Decimal("15"),
    )
    assert admin_client.post(url, data).status_code == 302
    deployment.refresh_from_db()
    assert deployment.priority == 2
