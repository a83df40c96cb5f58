"""Keys and cost quotas where the admin looks for them: the raw key shown once after a redirect,
"add key" from a tenant's page, each key's spend and limits in the key list and spent/remaining
on the cost-quota list, read from the live quota counters (in process and on Redis)."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from quotas import live
from quotas.admin import ISSUED_SESSION_KEY
from quotas.authentication.registry import quota_policy
from quotas.models import ApiKey, CostQuota, RateTier, Tenant
from quotas.policy import LimitPolicy, build_plan
from quotas.services import key_issue, tenant_create
from quotas.stores.local import LocalStore
from quotas.stores.shared import RedisStore, create_client
from tests.conftest import redis_url

pytestmark = pytest.mark.django_db


def key_form(tenant: Tenant, name: str = "ci") -> dict[str, str]:
    return {
        "tenant": str(tenant.pk),
        "name": name,
        "model_patterns": "",
        "tier": "",
        "expires_at_0": "",
        "expires_at_1": "",
    }


# --- The raw key, once ------------------------------------------------------------------------


def test_adding_a_key_redirects_to_a_page_showing_the_raw_key_once(admin_client):
    tenant = tenant_create(name="acme")

    response = admin_client.post(reverse("admin:quotas_apikey_add"), key_form(tenant))

    key = ApiKey.objects.get()
    issued_url = reverse("admin:quotas_apikey_issued", args=[key.pk])
    assert response.status_code == 302
    assert response["Location"] == issued_url
    assert "no-store" in response["Cache-Control"]

    first = admin_client.get(issued_url)
    html = first.content.decode()
    raw = first.context["raw_key"]
    assert raw.startswith("sk-gw-") and raw[:12] == key.prefix
    assert html.count(raw) == 1
    assert "no-store" in first["Cache-Control"]
    # Gone from the session (and its stored row) once shown.
    session_key = admin_client.cookies["sessionid"].value
    stored = Session.objects.get(session_key=session_key)
    assert ISSUED_SESSION_KEY not in stored.get_decoded()
    assert raw not in str(stored.get_decoded())

    reload = admin_client.get(issued_url)
    assert reload.status_code == 200
    assert reload.context["raw_key"] is None
    assert raw not in reload.content.decode()
    assert 'id="issued-gone"' in reload.content.decode()
    assert ApiKey.objects.count() == 1
    assert not any(raw in str(entry.__dict__) for entry in LogEntry.objects.all())


def test_the_issued_page_of_another_key_does_not_take_the_pending_secret(admin_client):
    tenant = tenant_create(name="acme")
    older, _ = key_issue(tenant=tenant, name="older")
    admin_client.post(reverse("admin:quotas_apikey_add"), key_form(tenant, name="new"))
    new = ApiKey.objects.get(name="new")

    other = admin_client.get(reverse("admin:quotas_apikey_issued", args=[older.pk]))
    mine = admin_client.get(reverse("admin:quotas_apikey_issued", args=[new.pk]))

    assert other.context["raw_key"] is None
    assert mine.context["raw_key"].startswith(new.prefix)


def test_the_issued_page_needs_a_staff_login(client):
    key, _ = key_issue(tenant=tenant_create(name="acme"), name="k")

    response = client.get(reverse("admin:quotas_apikey_issued", args=[key.pk]))

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_the_tenant_page_adds_a_key_for_that_tenant(admin_client):
    acme, other = tenant_create(name="acme"), tenant_create(name="other")

    page = admin_client.get(reverse("admin:quotas_tenant_change", args=[acme.pk])).content.decode()
    add_url = f"{reverse('admin:quotas_apikey_add')}?tenant={acme.pk}"
    assert f'<a id="add-tenant-key" href="{add_url}">Add API key</a>' in page

    form = admin_client.get(add_url).content.decode()
    assert f'<option value="{acme.pk}" selected>acme</option>' in form
    assert f'<option value="{other.pk}">other</option>' in form


# --- Live quota state in the lists ----------------------------------------------------------


@pytest.fixture
def restore_local_store():
    saved = list(live._local_store)
    yield
    live._local_store[:] = saved


@pytest.fixture(params=["local", "redis"])
def spend(request, settings, redis_prefix, restore_local_store):
    """Spends through the store the admin reads: ``spend(quota, settled_micro, in_flight_micro)``
    settles one request and leaves another one's reservation in flight."""
    if request.param == "local":
        settings.REDIS_URL = ""
        store = LocalStore()
        live.use_local_store(store)
    else:
        settings.REDIS_URL = redis_url()
        settings.GATEWAY_REDIS_PREFIX = redis_prefix
        live._client.cache_clear()
        store = None

    def _spend(quota: CostQuota, settled: int, in_flight: int = 0) -> None:
        asyncio.run(_through_store(store, settings, quota, settled, in_flight))

    return _spend


async def _through_store(store, settings, quota: CostQuota, settled: int, in_flight: int) -> None:
    tenant_id = quota.tenant_id or quota.key.tenant_id
    policy = LimitPolicy(tenant_id=tenant_id, key_id=quota.key_id or 0, quotas=(quota_policy(quota),))
    used = store or RedisStore(create_client(settings.REDIS_URL, timeout=5))
    try:
        for request_id, amount in (("settled", settled), ("in-flight", in_flight)):
            plan = build_plan(
                policy,
                prefix=settings.GATEWAY_REDIS_PREFIX,
                request_id=f"{request_id}-{quota.pk}",
                model="m",
                tokens=0,
                cost_micro=amount,
                lease_ms=600_000,
                now=dt.datetime.now(dt.UTC),
                tz=settings.GATEWAY_QUOTA_TIMEZONE,
            )
            verdict = await used.evaluate(plan)
            assert verdict.refusal is None
            if request_id == "settled":
                await used.settle(plan, admitted_ms=verdict.now_ms, tokens=0, cost_micro=amount)
    finally:
        if store is None:
            await used.aclose()


def test_cost_quota_list_shows_spent_remaining_and_a_bar(admin_client, spend):
    acme = tenant_create(name="acme")
    key, _ = key_issue(tenant=acme, name="ci")
    monthly = CostQuota.objects.create(tenant=acme, period="month", limit_usd=Decimal("10"))
    daily = CostQuota.objects.create(key=key, period="day", limit_usd=Decimal("2"), hard=False)
    untouched = CostQuota.objects.create(tenant=acme, period="week", limit_usd=Decimal("5"))
    spend(monthly, 1_234_500, 500_000)
    spend(CostQuota.objects.select_related("key").get(pk=daily.pk), 2_500_000)

    html = admin_client.get(reverse("admin:quotas_costquota_changelist")).content.decode()

    assert '<td class="field-spent">$1.2345 (+$0.50 in flight)</td>' in html
    assert '<td class="field-remaining">$8.2655</td>' in html
    assert 'title="17% used"><span style="width: 17%">' in html
    assert '<td class="field-spent">$2.50</td>' in html  # over its soft limit
    assert '<td class="field-remaining">$0.00</td>' in html
    assert 'class="quota-bar quota-bar-full" title="100% used"' in html
    assert html.count('<td class="field-spent">$0.00</td>') == 1  # the weekly one
    assert CostQuota.objects.filter(pk=untouched.pk).exists()


def test_key_list_shows_each_keys_spend_and_limits(admin_client, spend):
    tier = RateTier.objects.create(name="gold", requests_per_minute=60, tokens_per_minute=10_000)
    acme = tenant_create(name="acme", tier_name="gold")
    with_quota, _ = key_issue(tenant=acme, name="with-quota")
    own_tier, _ = key_issue(tenant=acme, name="own-tier", tier=tier)
    quota = CostQuota.objects.create(key=with_quota, period="month", limit_usd=Decimal("3"), hard=False)
    spend(CostQuota.objects.select_related("key").get(pk=quota.pk), 750_000)

    html = admin_client.get(reverse("admin:quotas_apikey_changelist")).content.decode()

    assert (
        '<td class="field-limits">tenant tier gold (60 req/min, 10,000 tok/min); $3.00/month (soft)</td>'
    ) in html
    assert '<td class="field-spend">$0.75 this month of $3.00</td>' in html
    assert '<td class="field-limits">key tier gold (60 req/min, 10,000 tok/min)</td>' in html
    assert html.count('<td class="field-spend">-</td>') == 1
    assert own_tier.pk != with_quota.pk


def _key_list_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("admin:quotas_apikey_changelist")).status_code == 200
    return len(queries)


def test_key_list_queries_do_not_grow_with_its_rows(admin_client, spend):
    tier = RateTier.objects.create(name="gold", requests_per_minute=60)
    first = tenant_create(name="first", tier_name="gold")
    key, _ = key_issue(tenant=first, name="k0", tier=tier)
    CostQuota.objects.create(key=key, period="day", limit_usd=Decimal("1"))
    one_row = _key_list_queries(admin_client)

    for i in range(1, 12):
        tenant = tenant_create(name=f"t{i}", tier_name="gold")
        key, _ = key_issue(tenant=tenant, name=f"k{i}", tier=tier if i % 2 else None)
        CostQuota.objects.create(key=key, period="month", limit_usd=Decimal("1"))
        CostQuota.objects.create(key=key, period="day", limit_usd=Decimal("1"))

    # The user, the two counts (filtered and total), the tenant filter's choices, the rows (tenant
    # and tiers joined) and their quotas: six, with 1 row or 12 (the session comes from the cache).
    assert _key_list_queries(admin_client) == one_row == 6


def test_lists_say_unavailable_when_the_counters_cannot_be_read(admin_client, settings, restore_local_store):
    settings.REDIS_URL = ""
    live._local_store.clear()  # a process whose runtime never started
    acme = tenant_create(name="acme")
    CostQuota.objects.create(tenant=acme, period="month", limit_usd=Decimal("10"))

    html = admin_client.get(reverse("admin:quotas_costquota_changelist")).content.decode()

    assert '<td class="field-spent">unavailable</td>' in html
    assert '<td class="field-remaining">unavailable</td>' in html
    assert "quota-bar" not in html.split('id="result_list"')[1]


# --- Branding ---------------------------------------------------------------------------------


def test_index_is_branded_and_links_the_console_pages(admin_client):
    response = admin_client.get(reverse("admin:index"))
    html = response.content.decode()

    assert "<title>Operator console | LLM Gateway admin</title>" in html
    assert '<div id="site-name"><a href="/admin/">LLM Gateway</a></div>' in html
    assert '<link rel="icon" type="image/svg+xml" href="/static/gateway_site/favicon.svg">' in html
    assert "View site" not in html
    links = html.split('id="console-links"')[1].split("</ul>")[0]
    assert f'<a href="{reverse("admin:quotas_tenant_changelist")}">Usage by tenant</a>' in links
    assert f'<a href="{reverse("routing-overview")}">Routing overview</a>' in links
    assert f'<a href="{reverse("live-tail")}">Live tail</a>' in links
    assert f'<a href="{reverse("spend-dashboard")}">Spend dashboard</a>' in links
    assert f'<a href="{reverse("request-log")}">Request log</a>' in links


def test_favicon_and_stylesheet_are_served(admin_client):
    favicon = admin_client.get("/static/gateway_site/favicon.svg")
    css = admin_client.get("/static/gateway_site/console.css")

    assert favicon.status_code == 200
    assert b"<svg" in b"".join(favicon.streaming_content)
    assert css.status_code == 200
    assert b".quota-bar" in b"".join(css.streaming_content)


def test_the_live_tail_page_is_for_staff_only(admin_client, client):
    page = admin_client.get(reverse("live-tail"))

    assert page.status_code == 200
    assert '<table id="live-tail">' in page.content.decode()
    assert '"/admin/live/ws"' in page.content.decode()
    anonymous = client.get(reverse("live-tail"))
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/admin/login/")
