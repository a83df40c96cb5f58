"""Forms instead of JSON boxes: a model's fallbacks picked in order among the public models, a
provider's options as the fields its kind reads; both checked by the code ``applyconfig`` runs."""

from __future__ import annotations

import pytest
from django.urls import reverse

from gateway_site.console.declarative import ConfigError, parse_config
from providers.models import Provider, PublicModel
from quotas.revision import bump_revision, current_revision

pytestmark = pytest.mark.django_db


def model_form(name: str, fallbacks: list[str]) -> dict[str, str]:
    data = {
        "name": name,
        "description": "",
        "enabled": "on",
        "strategy": "model",
        "timeout_seconds": "",
        "cache_ttl_seconds": "",
        "cache_key": "full_request",
        "deployments-TOTAL_FORMS": "0",
        "deployments-INITIAL_FORMS": "0",
        "deployments-MIN_NUM_FORMS": "0",
        "deployments-MAX_NUM_FORMS": "1000",
    }
    data |= {f"fallbacks_{i}": value for i, value in enumerate(fallbacks)}
    return data


def provider_form(name: str, kind: str, **extra: str) -> dict[str, str]:
    return {
        "name": name,
        "kind": kind,
        "base_url": "http://127.0.0.1:9001/v1" if kind == "openai" else "",
        "api_key": "",
        "api_key_env": "",
        "timeout_seconds": "",
        "enabled": "on",
        **extra,
    }


@pytest.fixture
def models():
    return {name: PublicModel.objects.create(name=name) for name in ("chat-a", "chat-b", "chat-c", "main")}


def test_fallbacks_are_picked_among_the_other_models(admin_client, models):
    html = admin_client.get(reverse("admin:providers_publicmodel_change", args=[models["main"].pk])).content
    page = html.decode()

    assert page.count('<select name="fallbacks_') == 4
    first = page.split('<select name="fallbacks_0"')[1].split("</select>")[0]
    assert [line.split('"')[1] for line in first.split("<option value=")[1:]] == [
        "",
        "chat-a",
        "chat-b",
        "chat-c",
    ]  # never the model itself
    assert "<textarea" not in page.split('id="publicmodel_form"')[1].split("deployments-group")[0]


def test_the_fallback_form_saves_the_chosen_order(admin_client, models):
    bump_revision()
    before = current_revision()
    url = reverse("admin:providers_publicmodel_change", args=[models["main"].pk])

    response = admin_client.post(url, model_form("main", ["chat-c", "", "chat-a", ""]))

    assert response.status_code == 302
    assert PublicModel.objects.get(name="main").fallbacks == ["chat-c", "chat-a"]
    assert current_revision() == before + 1
    page = admin_client.get(url).content.decode()
    assert '<option value="chat-c" selected>' in page.split('name="fallbacks_0"')[1].split("</select>")[0]
    assert '<option value="chat-a" selected>' in page.split('name="fallbacks_1"')[1].split("</select>")[0]


def test_a_fallback_twice_is_refused_as_applyconfig_refuses_it(admin_client, models):
    url = reverse("admin:providers_publicmodel_change", args=[models["main"].pk])

    response = admin_client.post(url, model_form("main", ["chat-a", "chat-a"]))

    assert response.status_code == 200
    assert "Fallback model &#x27;chat-a&#x27; is listed twice." in response.content.decode()
    assert PublicModel.objects.get(name="main").fallbacks == []
    text = """
providers: [{name: mock, kind: mock}]
models:
  - name: main
    fallbacks: [chat-a, chat-a]
    deployments: [{provider: mock, model: m, free: true}]
"""
    with pytest.raises(ConfigError, match="model main: fallback model 'chat-a' is listed twice"):
        parse_config(text)


def test_a_fallback_that_is_not_a_model_is_refused(admin_client, models):
    url = reverse("admin:providers_publicmodel_change", args=[models["main"].pk])

    response = admin_client.post(url, model_form("main", ["gone"]))

    assert response.status_code == 200
    assert "Select a valid choice. gone is not one of the available choices." in response.content.decode()
    assert PublicModel.objects.get(name="main").fallbacks == []


def test_provider_options_are_fields_of_their_kind(admin_client):
    page = admin_client.get(reverse("admin:providers_provider_add")).content.decode()

    assert 'name="option_chunk_delay_ms"' in page
    assert "mock only. Pause between streamed chunks" in page
    assert 'name="options"' not in page


def test_a_provider_option_is_saved_from_its_field(admin_client):
    response = admin_client.post(
        reverse("admin:providers_provider_add"), provider_form("quick", "mock", option_chunk_delay_ms="5")
    )

    assert response.status_code == 302
    assert Provider.objects.get(name="quick").options == {"chunk_delay_ms": 5}


def test_emptying_an_option_field_removes_it_and_keeps_other_entries(admin_client):
    provider = Provider.objects.create(name="quick", kind="mock", options={"chunk_delay_ms": 5, "note": "x"})
    url = reverse("admin:providers_provider_change", args=[provider.pk])
    assert 'name="option_chunk_delay_ms" value="5"' in admin_client.get(url).content.decode()

    response = admin_client.post(url, provider_form("quick", "mock", option_chunk_delay_ms=""))

    assert response.status_code == 302
    assert Provider.objects.get(pk=provider.pk).options == {"note": "x"}


def test_an_option_of_another_kind_is_refused_as_applyconfig_refuses_it(admin_client):
    response = admin_client.post(
        reverse("admin:providers_provider_add"), provider_form("up", "openai", option_chunk_delay_ms="5")
    )

    assert response.status_code == 200
    assert (
        "Option &#x27;chunk_delay_ms&#x27; applies only to mock providers, not openai."
        in response.content.decode()
    )
    assert not Provider.objects.exists()
    text = """
providers:
  - {name: up, kind: openai, base_url: "http://127.0.0.1:9001/v1", options: {chunk_delay_ms: 5}}
"""
    with pytest.raises(
        ConfigError, match="Option 'chunk_delay_ms' applies only to mock providers, not openai"
    ):
        parse_config(text)


def test_an_option_out_of_bounds_is_refused(admin_client):
    response = admin_client.post(
        reverse("admin:providers_provider_add"), provider_form("quick", "mock", option_chunk_delay_ms="-1")
    )

    assert response.status_code == 200
    assert "Ensure this value is greater than or equal to 0" in response.content.decode()
    assert not Provider.objects.exists()
    with pytest.raises(ConfigError, match="Option 'chunk_delay_ms' must be at least 0"):
        parse_config("providers: [{name: quick, kind: mock, options: {chunk_delay_ms: -1}}]")
