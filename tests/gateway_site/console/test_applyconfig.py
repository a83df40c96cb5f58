"""``applyconfig`` (declarative YAML upsert) and ``setupdemo``, through call_command."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from providers.models import Deployment, Provider, PublicModel
from quotas.models import ApiKey, RateTier, Tenant
from quotas.revision import bump_revision, current_revision
from tests.doc_examples import code_block

pytestmark = pytest.mark.django_db

# The example of docs/admin-and-applyconfig.md, read from there: the documentation is tested.
DOCS_EXAMPLE = code_block("docs/admin-and-applyconfig.md", heading="Declarative configuration: `applyconfig`")

TWO_DEPLOYMENTS = """\
providers:
  - name: upstream-a
    kind: openai
    base_url: http://127.0.0.1:9001/v1/
  - name: upstream-b
    kind: openai
    base_url: http://127.0.0.1:9002/v1
models:
  - name: gpt-4o-mini
    deployments:
      - provider: upstream-a
        model: gpt-4o-mini
        free: true
      - provider: upstream-b
        model: gpt-4o-mini-2024-07-18
        priority: 2
        free: true
"""


@pytest.fixture
def apply(tmp_path):
    def _apply(text: str) -> list[str]:
        path = tmp_path / "gateway.yaml"
        path.write_text(text)
        out = StringIO()
        call_command("applyconfig", str(path), stdout=out)
        return out.getvalue().splitlines()

    return _apply


def refused(tmp_path: Path, text: str) -> str:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    before = current_revision()
    with pytest.raises(CommandError) as excinfo:
        call_command("applyconfig", str(path), stdout=StringIO())
    assert current_revision() == before
    return str(excinfo.value).removeprefix(f"{path}: ")


def all_rows() -> dict[str, list[Any]]:
    return {
        "providers": list(Provider.objects.order_by("pk").values()),
        "models": list(PublicModel.objects.order_by("pk").values()),
        "deployments": list(Deployment.objects.order_by("pk").values()),
        "tiers": list(RateTier.objects.order_by("pk").values()),
    }


def test_documented_example_creates_exactly_those_rows(apply):
    bump_revision()  # the counter row exists, as in any configured gateway
    before = current_revision()

    out = apply(DOCS_EXAMPLE)

    assert out == [
        "created provider upstream-a",
        "created tier standard",
        "created model gpt-4o-mini",
        "created deployment gpt-4o-mini -> upstream-a/gpt-4o-mini",
    ]
    assert current_revision() == before + 1
    provider = Provider.objects.get()
    assert (
        provider.name,
        provider.kind,
        provider.base_url,
        provider.api_key_env,
        provider.api_key_encrypted,
        provider.timeout_seconds,
        provider.options,
        provider.enabled,
    ) == ("upstream-a", "openai", "http://127.0.0.1:9001/v1", "UPSTREAM_A_KEY", "", None, {}, True)
    model = PublicModel.objects.get()
    assert (model.name, model.description, model.enabled) == ("gpt-4o-mini", "", True)
    deployment = Deployment.objects.get()
    assert (
        deployment.model_id,
        deployment.provider_id,
        deployment.upstream_model,
        deployment.priority,
        deployment.weight,
        deployment.input_per_million,
        deployment.output_per_million,
        deployment.cached_input_per_million,
        deployment.enabled,
    ) == (model.pk, provider.pk, "gpt-4o-mini", 1, 1, Decimal("0.15"), Decimal("0.60"), None, True)
    tier = RateTier.objects.get()
    assert (
        tier.name,
        tier.algorithm,
        tier.requests_per_minute,
        tier.tokens_per_minute,
        tier.requests_per_day,
        tier.tokens_per_day,
        tier.max_parallel,
    ) == ("standard", "sliding_window", 600, 200000, None, None, None)


def test_applying_twice_changes_nothing(apply):
    apply(DOCS_EXAMPLE)
    rows, revision = all_rows(), current_revision()

    out = apply(DOCS_EXAMPLE)

    assert out == ["no changes"]
    assert all_rows() == rows  # updated_at included
    assert current_revision() == revision


def test_applying_twice_with_every_field_set_changes_nothing(apply):
    full = """
providers:
  - name: mock
    kind: mock
    timeout_seconds: 12.5
    options: {chunk_delay_ms: 0, nested: {a: [1, 2]}}
    enabled: false
models:
  - name: mock-echo
    description: Echoes.
    enabled: false
    deployments:
      - provider: mock
        model: mock-echo
        priority: 3
        weight: 5
        input_per_million: 0.1
        output_per_million: 2
        cached_input_per_million: "0.000001"
        enabled: false
tiers:
  - name: burst
    algorithm: token_bucket
    requests_per_minute: 1
    tokens_per_minute: 2
    requests_per_day: 3
    tokens_per_day: 4000000000
    max_parallel: 5
"""
    assert len(apply(full)) == 4
    rows, revision = all_rows(), current_revision()

    assert apply(full) == ["no changes"]
    assert all_rows() == rows
    assert current_revision() == revision
    assert Deployment.objects.get().cached_input_per_million == Decimal("0.000001")


def test_changing_a_price_updates_just_that(apply):
    apply(DOCS_EXAMPLE)
    rows, revision = all_rows(), current_revision()

    out = apply(DOCS_EXAMPLE.replace('"0.60"', '"0.70"'))

    assert out == ["updated deployment gpt-4o-mini -> upstream-a/gpt-4o-mini (output_per_million)"]
    assert current_revision() == revision + 1
    after = all_rows()
    assert after["providers"] == rows["providers"]
    assert after["models"] == rows["models"]
    assert after["tiers"] == rows["tiers"]
    [old], [new] = rows["deployments"], after["deployments"]
    assert new["output_per_million"] == Decimal("0.70")
    assert new["updated_at"] > old["updated_at"]
    assert {k: v for k, v in new.items() if k not in ("output_per_million", "updated_at")} == {
        k: v for k, v in old.items() if k not in ("output_per_million", "updated_at")
    }


def test_a_deployment_removed_from_the_file_is_deleted(apply):
    apply(TWO_DEPLOYMENTS)
    assert Deployment.objects.count() == 2
    kept = Deployment.objects.get(provider__name="upstream-a")
    revision = current_revision()
    without_b = TWO_DEPLOYMENTS.split("      - provider: upstream-b")[0]

    out = apply(without_b)

    assert out == ["deleted deployment gpt-4o-mini -> upstream-b/gpt-4o-mini-2024-07-18"]
    assert list(Deployment.objects.values_list("pk", flat=True)) == [kept.pk]
    # Providers absent from a deployment are left alone.
    assert list(Provider.objects.values_list("name", flat=True)) == ["upstream-a", "upstream-b"]
    assert current_revision() == revision + 1


def test_models_and_providers_absent_from_the_file_are_left_alone(apply):
    apply(DOCS_EXAMPLE)
    rows = all_rows()

    assert apply(
        "tiers:\n  - name: standard\n    requests_per_minute: 600\n    tokens_per_minute: 200000\n"
    ) == ["no changes"]
    assert apply("") == ["no changes"]
    assert all_rows() == rows


def test_a_provider_already_in_the_database_may_be_referenced(apply):
    apply(DOCS_EXAMPLE)

    out = apply(
        "models:\n  - name: other\n    deployments:\n      - {provider: upstream-a, model: o1, free: true}\n"
    )

    assert out == ["created model other", "created deployment other -> upstream-a/o1"]


def test_unknown_provider_is_refused_and_nothing_is_written(tmp_path):
    message = refused(tmp_path, DOCS_EXAMPLE.replace("- provider: upstream-a", "- provider: upstream-z"))

    assert message == "model gpt-4o-mini: unknown provider 'upstream-z'"
    assert all_rows() == {"providers": [], "models": [], "deployments": [], "tiers": []}


def test_bad_yaml_is_refused(tmp_path):
    message = refused(tmp_path, "providers:\n  - name: a\n   kind: mock\n")

    assert message.startswith("not valid YAML: ")
    assert "line 3" in message
    assert all_rows() == {"providers": [], "models": [], "deployments": [], "tiers": []}


def test_unknown_field_is_refused(tmp_path):
    message = refused(tmp_path, DOCS_EXAMPLE.replace('input_per_million: "0.15"', 'input_price: "0.15"'))

    assert message == "models.0.deployments.0.input_price: Extra inputs are not permitted"
    assert all_rows() == {"providers": [], "models": [], "deployments": [], "tiers": []}


def test_unknown_top_level_section_is_refused(tmp_path):
    message = refused(tmp_path, DOCS_EXAMPLE + "keys:\n  - name: k\n")

    assert message == "keys: Extra inputs are not permitted"
    assert all_rows() == {"providers": [], "models": [], "deployments": [], "tiers": []}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "- just\n- a list\n",
            "(top level): Input should be a valid dictionary or instance of GatewayConfig",
        ),
        (
            "providers: [{name: p, kind: vertex}]\n",
            "providers.0.kind: Input should be 'openai', 'azure', 'anthropic', 'gemini', 'bedrock' or 'mock'",
        ),
        (
            'models: [{name: m, deployments: [{provider: p, model: x, input_per_million: "-1"}]}]\n',
            "models.0.deployments.0.input_per_million: Input should be greater than or equal to 0",
        ),
        (
            "models: [{name: m, deployments: []}]\n",
            "models.0.deployments: List should have at least 1 item after validation, not 0",
        ),
        (
            'models: [{name: m, deployments: [{provider: p, model: x, input_per_million: "0.0000001"}]}]\n',
            "models.0.deployments.0.input_per_million: "
            "Decimal input should have no more than 6 decimal places",
        ),
    ],
)
def test_invalid_values_are_refused(tmp_path, text, expected):
    assert refused(tmp_path, text) == expected
    assert all_rows() == {"providers": [], "models": [], "deployments": [], "tiers": []}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "providers: [{name: p, kind: mock}, {name: p, kind: openai, base_url: 'http://127.0.0.1:1/v1'}]\n",
            "providers: 'p' is listed more than once",
        ),
        ("tiers: [{name: t}, {name: t, max_parallel: 2}]\n", "tiers: 't' is listed more than once"),
        (
            "providers: [{name: p, kind: mock}]\n"
            "models: [{name: m, deployments: [{provider: p, model: x}]},"
            " {name: m, deployments: [{provider: p, model: y}]}]\n",
            "models: 'm' is listed more than once",
        ),
        (
            "providers: [{name: p, kind: mock}]\n"
            "models: [{name: m, deployments:"
            " [{provider: p, model: x}, {provider: p, model: x, weight: 2}]}]\n",
            "model m: deployment p/x is listed more than once",
        ),
    ],
)
def test_duplicates_are_refused(tmp_path, text, expected):
    assert refused(tmp_path, text) == expected
    assert all_rows() == {"providers": [], "models": [], "deployments": [], "tiers": []}


def test_missing_file_is_refused(tmp_path):
    missing = tmp_path / "nope.yaml"

    with pytest.raises(CommandError) as excinfo:
        call_command("applyconfig", str(missing), stdout=StringIO())

    assert str(excinfo.value).startswith(f"cannot read {missing}: ")


# --- setupdemo ------------------------------------------------------------------------------


def test_setupdemo_is_idempotent():
    first = StringIO()
    call_command("setupdemo", stdout=first)

    lines = first.getvalue().splitlines()
    key = ApiKey.objects.get()
    assert lines == ["demo key for tenant demo (shown only once):", f"  {lines[1].strip()}"]
    assert lines[1].strip()[:12] == key.prefix
    assert list(Tenant.objects.values_list("name", flat=True)) == ["demo"]
    assert list(PublicModel.objects.values_list("name", flat=True)) == ["mock-echo"]
    rows, revision = all_rows(), current_revision()

    second = StringIO()
    call_command("setupdemo", stdout=second)

    assert second.getvalue() == (
        "tenant demo already has a key (issue another with: "
        "python manage.py issuekey --tenant demo --name NAME)\n"
    )
    assert list(ApiKey.objects.values_list("pk", flat=True)) == [key.pk]
    assert Tenant.objects.count() == 1
    assert all_rows() == rows
    assert current_revision() == revision


@pytest.mark.django_db
def test_openai_provider_without_a_base_url_is_refused(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("providers:\n  - name: p\n    kind: openai\n")
    with pytest.raises(CommandError) as caught:
        call_command("applyconfig", str(path), stdout=StringIO())
    assert "providers.0: Value error, An OpenAI-compatible provider needs a base URL." in str(caught.value)
    assert not Provider.objects.exists()
