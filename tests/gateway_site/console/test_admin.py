"""The admin for the control plane, through Django's test client as a superuser."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils import timezone

from accounting.models import UsageRecord
from providers.models import Deployment, Provider, PublicModel
from providers.secrets import decrypt_secret
from quotas.models import ApiKey, CostQuota, ModelAccessRule, RateTier, Tenant
from quotas.revision import bump_revision, current_revision
from quotas.services import key_issue, tenant_create

pytestmark = pytest.mark.django_db

SECRET = "sk-upstream-PLAINTEXT-secret-0123456789"

EDITABLE = [
    "quotas_tenant",
    "quotas_apikey",
    "quotas_modelaccessrule",
    "quotas_ratetier",
    "quotas_costquota",
    "providers_provider",
    "providers_publicmodel",
    "providers_deployment",
]


def inline_management(*prefixes: str, initial: int = 0) -> dict[str, str]:
    data: dict[str, str] = {}
    for prefix in prefixes:
        data |= {
            f"{prefix}-TOTAL_FORMS": str(initial),
            f"{prefix}-INITIAL_FORMS": str(initial),
            f"{prefix}-MIN_NUM_FORMS": "0",
            f"{prefix}-MAX_NUM_FORMS": "1000",
        }
    return data


def tenant_data(name: str, **extra: str) -> dict[str, str]:
    return {
        "name": name,
        "display_name": "",
        "tier": "",
        "is_active": "on",
        **inline_management("access_rules", "quotas", "keys"),
        **extra,
    }


def key_data(tenant: Tenant, name: str = "ci", patterns: str = "") -> dict[str, str]:
    return {
        "tenant": str(tenant.pk),
        "name": name,
        "model_patterns": patterns,
        "tier": "",
        "expires_at_0": "",
        "expires_at_1": "",
    }


def provider_data(name: str = "upstream-a", **extra: str) -> dict[str, str]:
    return {
        "name": name,
        "kind": "openai",
        "base_url": "http://127.0.0.1:9001/v1",
        "api_key": "",
        "api_key_env": "",
        "timeout_seconds": "",
        "options": "{}",
        "enabled": "on",
        **extra,
    }


def deployment_fields(model: PublicModel | None, provider: Provider) -> dict[str, str]:
    return {
        **({"model": str(model.pk)} if model else {}),
        "provider": str(provider.pk),
        "upstream_model": "gpt-4o-mini",
        "priority": "1",
        "weight": "1",
        "input_per_million": "0.15",
        "output_per_million": "0.60",
        "cached_input_per_million": "",
        "enabled": "on",
    }


# --- every page renders -------------------------------------------------------------------


@pytest.fixture
def one_of_each():
    tier = RateTier.objects.create(name="standard", requests_per_minute=600)
    tenant = tenant_create(name="acme", tier_name="standard")
    key, _ = key_issue(tenant=tenant, name="ci", allowed_models=["gpt-*"])
    rule = ModelAccessRule.objects.create(tenant=tenant, pattern="gpt-4", effect="deny")
    quota = CostQuota.objects.create(tenant=tenant, limit_usd=Decimal("10"))
    provider = Provider.objects.create(name="upstream-a", kind="openai", base_url="http://127.0.0.1:9001/v1")
    model = PublicModel.objects.create(name="gpt-4o-mini")
    deployment = Deployment.objects.create(model=model, provider=provider, upstream_model="gpt-4o-mini")
    usage = UsageRecord.objects.create(
        request_id="req-1",
        created_at=timezone.now(),
        latency_ms=12.5,
        upstream_latency_ms=10.0,
        tenant_id=tenant.pk,
        tenant_name="acme",
        key_id=key.pk,
        key_prefix=key.prefix,
        model="gpt-4o-mini",
        provider="upstream-a",
        status=200,
    )
    return {
        "quotas_tenant": tenant,
        "quotas_apikey": key,
        "quotas_modelaccessrule": rule,
        "quotas_ratetier": tier,
        "quotas_costquota": quota,
        "providers_provider": provider,
        "providers_publicmodel": model,
        "providers_deployment": deployment,
        "accounting_usagerecord": usage,
        "_tier": tier,
    }


@pytest.mark.parametrize("name", [*EDITABLE, "accounting_usagerecord"])
def test_changelist_and_change_pages_render(admin_client, one_of_each, name):
    obj = one_of_each[name]

    changelist = admin_client.get(reverse(f"admin:{name}_changelist"))
    change = admin_client.get(reverse(f"admin:{name}_change", args=[obj.pk]))

    assert changelist.status_code == 200
    assert reverse(f"admin:{name}_change", args=[obj.pk]) in changelist.content.decode()
    assert change.status_code == 200


@pytest.mark.parametrize("name", EDITABLE)
def test_add_pages_render(admin_client, name):
    response = admin_client.get(reverse(f"admin:{name}_add"))

    assert response.status_code == 200


def test_public_model_add_page_has_the_deployment_inline(admin_client):
    html = admin_client.get(reverse("admin:providers_publicmodel_add")).content.decode()

    assert 'name="deployments-TOTAL_FORMS"' in html
    assert 'name="deployments-__prefix__-upstream_model"' in html


def test_usage_records_are_read_only(admin_client, one_of_each):
    usage = one_of_each["accounting_usagerecord"]

    assert admin_client.get(reverse("admin:accounting_usagerecord_add")).status_code == 403
    assert (
        admin_client.get(reverse("admin:accounting_usagerecord_delete", args=[usage.pk])).status_code == 403
    )
    assert UsageRecord.objects.count() == 1


def test_admin_requires_login(client):
    response = client.get(reverse("admin:quotas_apikey_changelist"))

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


# --- API keys -------------------------------------------------------------------------------


def test_adding_a_key_shows_the_raw_key_exactly_once(admin_client):
    tenant = tenant_create(name="acme")
    bump_revision()  # the counter row exists, as in any configured gateway
    before = current_revision()

    posted = admin_client.post(
        reverse("admin:quotas_apikey_add"), key_data(tenant, patterns="gpt-4o*, mock-*")
    )
    key = ApiKey.objects.get()
    assert posted.status_code == 302
    assert posted["Location"] == reverse("admin:quotas_apikey_issued", args=[key.pk])

    response = admin_client.get(posted["Location"])
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"].split(", ")
    html = response.content.decode()
    raw = response.context["raw_key"]
    assert raw.startswith("sk-gw-")
    assert html.count(raw) == 1
    assert f'<input id="issued-key" type="text" readonly value="{raw}"' in html
    assert key.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert key.prefix == raw[:12]
    assert (key.tenant_id, key.name, key.allowed_models) == (tenant.pk, "ci", ["gpt-4o*", "mock-*"])
    assert not any(raw in str(value) for value in ApiKey.objects.filter(pk=key.pk).values().get().values())
    assert current_revision() == before + 1

    later_pages = [
        reverse("admin:quotas_apikey_change", args=[key.pk]),
        reverse("admin:quotas_apikey_changelist"),
        reverse("admin:quotas_apikey_history", args=[key.pk]),
        reverse("admin:quotas_tenant_change", args=[tenant.pk]),
        reverse("admin:index"),
    ]
    for url in later_pages:
        later = admin_client.get(url)
        assert later.status_code == 200, url
        assert raw not in later.content.decode(), url
        assert key.prefix in later.content.decode() or url == reverse("admin:index")
    assert not any(raw in str(entry.__dict__) for entry in LogEntry.objects.all())
    assert LogEntry.objects.count() == 1


def test_an_invalid_key_form_issues_nothing(admin_client):
    before = current_revision()

    response = admin_client.post(reverse("admin:quotas_apikey_add"), {"name": "ci"})

    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert "issued-key" not in response.content.decode()
    assert ApiKey.objects.count() == 0
    assert current_revision() == before


def test_editing_a_key_keeps_its_secret_and_tenant(admin_client):
    tenant = tenant_create(name="acme")
    other = tenant_create(name="other")
    key, raw = key_issue(tenant=tenant, name="ci", allowed_models=["gpt-*"])
    change_url = reverse("admin:quotas_apikey_change", args=[key.pk])
    assert "gpt-*</textarea>" in admin_client.get(change_url).content.decode()
    bump_revision()  # the counter row exists, as in any configured gateway
    before = current_revision()

    response = admin_client.post(change_url, key_data(other, name="renamed", patterns="mock-*\nclaude-*"))

    assert response.status_code == 302
    key.refresh_from_db()
    assert (key.name, key.allowed_models, key.tenant_id) == ("renamed", ["mock-*", "claude-*"], tenant.pk)
    assert (key.key_hash, key.prefix) == (hashlib.sha256(raw.encode()).hexdigest(), raw[:12])
    assert current_revision() == before + 1


def test_revoke_action_revokes_the_selected_keys(admin_client):
    tenant = tenant_create(name="acme")
    first, _ = key_issue(tenant=tenant, name="first")
    second, _ = key_issue(tenant=tenant, name="second")
    kept, _ = key_issue(tenant=tenant, name="kept")
    bump_revision()  # the counter row exists, as in any configured gateway
    before = current_revision()

    response = admin_client.post(
        reverse("admin:quotas_apikey_changelist"),
        {
            "action": "revoke_keys",
            "select_across": "0",
            "index": "0",
            "_selected_action": [first.pk, second.pk],
        },
        follow=True,
    )

    assert response.status_code == 200
    assert [str(m) for m in response.context["messages"]] == ["Revoked 2 key(s)."]
    revoked = ApiKey.objects.filter(revoked_at__isnull=False).order_by("name")
    assert list(revoked.values_list("name", flat=True)) == ["first", "second"]
    kept.refresh_from_db()
    assert kept.revoked_at is None
    assert current_revision() == before + 1
    assert response.content.decode().count(">revoked<") == 2


def test_revoke_action_on_revoked_keys_changes_nothing(admin_client):
    tenant = tenant_create(name="acme")
    key, _ = key_issue(tenant=tenant, name="k")
    data = {"action": "revoke_keys", "select_across": "0", "index": "0", "_selected_action": [key.pk]}
    admin_client.post(reverse("admin:quotas_apikey_changelist"), data, follow=True)
    key.refresh_from_db()
    revoked_at, before = key.revoked_at, current_revision()

    response = admin_client.post(reverse("admin:quotas_apikey_changelist"), data, follow=True)

    assert [str(m) for m in response.context["messages"]] == ["Revoked 0 key(s)."]
    key.refresh_from_db()
    assert key.revoked_at == revoked_at
    assert current_revision() == before


# --- provider secrets -----------------------------------------------------------------------


def test_provider_api_key_is_write_only_and_encrypted(admin_client):
    response = admin_client.post(reverse("admin:providers_provider_add"), provider_data(api_key=SECRET))

    assert response.status_code == 302
    provider = Provider.objects.get()
    token = provider.api_key_encrypted
    assert token
    assert SECRET not in token
    assert decrypt_secret(token) == SECRET

    change_url = reverse("admin:providers_provider_change", args=[provider.pk])
    html = admin_client.get(change_url).content.decode()
    assert SECRET not in html
    assert token not in html
    assert '<input type="password" name="api_key"' in html
    changelist = admin_client.get(reverse("admin:providers_provider_changelist")).content.decode()
    assert SECRET not in changelist
    assert token not in changelist


def test_provider_empty_api_key_keeps_the_stored_one(admin_client):
    admin_client.post(reverse("admin:providers_provider_add"), provider_data(api_key=SECRET))
    provider = Provider.objects.get()
    token = provider.api_key_encrypted

    response = admin_client.post(
        reverse("admin:providers_provider_change", args=[provider.pk]),
        provider_data(api_key="", api_key_env="UPSTREAM_A_KEY"),
    )

    assert response.status_code == 302
    provider.refresh_from_db()
    assert provider.api_key_encrypted == token
    assert provider.api_key_env == "UPSTREAM_A_KEY"


def test_provider_new_api_key_replaces_the_stored_one(admin_client):
    admin_client.post(reverse("admin:providers_provider_add"), provider_data(api_key=SECRET))
    provider = Provider.objects.get()

    admin_client.post(
        reverse("admin:providers_provider_change", args=[provider.pk]), provider_data(api_key="sk-rotated")
    )

    provider.refresh_from_db()
    assert decrypt_secret(provider.api_key_encrypted) == "sk-rotated"


def test_provider_clear_removes_the_stored_key(admin_client):
    admin_client.post(reverse("admin:providers_provider_add"), provider_data(api_key=SECRET))
    provider = Provider.objects.get()
    bump_revision()  # the counter row exists, as in any configured gateway
    before = current_revision()

    response = admin_client.post(
        reverse("admin:providers_provider_change", args=[provider.pk]), provider_data(clear_api_key="on")
    )

    assert response.status_code == 302
    provider.refresh_from_db()
    assert provider.api_key_encrypted == ""
    assert current_revision() == before + 1


def test_openai_provider_without_base_url_is_refused(admin_client):
    response = admin_client.post(reverse("admin:providers_provider_add"), provider_data(base_url=""))

    assert response.status_code == 200
    assert "An OpenAI-compatible provider needs a base URL." in response.content.decode()
    assert Provider.objects.count() == 0


# --- every save and delete bumps the revision exactly once ----------------------------------


def add_payloads(objects) -> dict[str, dict[str, str]]:
    tenant, tier = objects["quotas_tenant"], objects["_tier"]
    provider, model = objects["providers_provider"], objects["providers_publicmodel"]
    return {
        "quotas_tenant": tenant_data("beta", tier=str(tier.pk)),
        "quotas_apikey": key_data(tenant, name="added"),
        "quotas_modelaccessrule": {"tenant": str(tenant.pk), "pattern": "o1*", "effect": "allow"},
        "quotas_ratetier": {
            "name": "burst",
            "algorithm": "token_bucket",
            "requests_per_minute": "5",
            **inline_management("model_limits"),
        },
        "quotas_costquota": {
            "tenant": str(tenant.pk),
            "key": "",
            "period": "day",
            "limit_usd": "5",
            "hard": "on",
        },
        "providers_provider": provider_data("upstream-b"),
        "providers_publicmodel": {
            "name": "o1",
            "description": "",
            "enabled": "on",
            "strategy": "model",
            "fallbacks": "[]",
            "cache_key": "full_request",
            **inline_management("deployments"),
            "deployments-TOTAL_FORMS": "1",
            **{f"deployments-0-{k}": v for k, v in deployment_fields(None, provider).items()},
        },
        "providers_deployment": {**deployment_fields(model, provider), "upstream_model": "gpt-4o-mini-2"},
    }


@pytest.mark.parametrize("name", EDITABLE)
def test_add_bumps_the_revision_once(admin_client, one_of_each, name):
    model_name = name.split("_")[1]
    model: type[Any] = {
        "tenant": Tenant,
        "apikey": ApiKey,
        "modelaccessrule": ModelAccessRule,
        "ratetier": RateTier,
        "costquota": CostQuota,
        "provider": Provider,
        "publicmodel": PublicModel,
        "deployment": Deployment,
    }[model_name]
    count, before = model.objects.count(), current_revision()

    response = admin_client.post(reverse(f"admin:{name}_add"), add_payloads(one_of_each)[name])

    assert response.status_code == 302
    if name == "quotas_apikey":  # to the page that shows the new secret once
        assert "issued-key" in admin_client.get(response["Location"]).content.decode()
    assert model.objects.count() == count + 1
    assert current_revision() == before + 1
    if name == "providers_publicmodel":
        assert list(Deployment.objects.filter(model__name="o1").values_list("upstream_model", flat=True)) == [
            "gpt-4o-mini"
        ]


def test_change_with_inlines_bumps_the_revision_once(admin_client, one_of_each):
    tenant, rule, quota = (
        one_of_each["quotas_tenant"],
        one_of_each["quotas_modelaccessrule"],
        one_of_each["quotas_costquota"],
    )
    key = one_of_each["quotas_apikey"]
    data = tenant_data("acme", display_name="Acme Corp")
    data |= inline_management("access_rules", "quotas", "keys", initial=1)
    data |= {
        "access_rules-0-id": str(rule.pk),
        "access_rules-0-tenant": str(tenant.pk),
        "access_rules-0-pattern": "gpt-4",
        "access_rules-0-effect": "deny",
        "quotas-0-id": str(quota.pk),
        "quotas-0-tenant": str(tenant.pk),
        "quotas-0-period": "week",
        "quotas-0-limit_usd": "10",
        "quotas-0-hard": "on",
        "keys-0-id": str(key.pk),
        "keys-0-tenant": str(tenant.pk),
    }
    bump_revision()  # the counter row exists, as in any configured gateway
    before = current_revision()

    response = admin_client.post(reverse("admin:quotas_tenant_change", args=[tenant.pk]), data)

    assert response.status_code == 302, response.content.decode()[:3000]
    tenant.refresh_from_db()
    quota.refresh_from_db()
    assert (tenant.display_name, quota.period) == ("Acme Corp", "week")
    assert current_revision() == before + 1


@pytest.mark.parametrize(
    "name",
    [
        "quotas_apikey",
        "quotas_modelaccessrule",
        "quotas_costquota",
        "providers_deployment",
        "quotas_ratetier",
        "providers_publicmodel",
        "quotas_tenant",
    ],
)
def test_delete_bumps_the_revision_once(admin_client, one_of_each, name):
    obj = one_of_each[name]
    bump_revision()  # the counter row exists, as in any configured gateway
    before = current_revision()

    response = admin_client.post(reverse(f"admin:{name}_delete", args=[obj.pk]), {"post": "yes"})

    assert response.status_code == 302
    assert not type(obj).objects.filter(pk=obj.pk).exists()
    assert current_revision() == before + 1


def test_provider_in_use_cannot_be_deleted(admin_client, one_of_each):
    provider = one_of_each["providers_provider"]
    before = current_revision()

    response = admin_client.post(
        reverse("admin:providers_provider_delete", args=[provider.pk]), {"post": "yes"}
    )

    assert response.status_code == 200
    assert "would require deleting the following protected related objects" in response.content.decode()
    assert Provider.objects.filter(pk=provider.pk).exists()
    assert current_revision() == before


def test_bulk_delete_action_bumps_the_revision_once(admin_client):
    tenant = tenant_create(name="acme")
    keys = [key_issue(tenant=tenant, name=f"k{i}")[0] for i in range(3)]
    bump_revision()  # the counter row exists, as in any configured gateway
    before = current_revision()

    response = admin_client.post(
        reverse("admin:quotas_apikey_changelist"),
        {
            "action": "delete_selected",
            "select_across": "0",
            "index": "0",
            "post": "yes",
            "_selected_action": [k.pk for k in keys[:2]],
        },
    )

    assert response.status_code == 302
    assert list(ApiKey.objects.values_list("pk", flat=True)) == [keys[2].pk]
    assert current_revision() == before + 1
