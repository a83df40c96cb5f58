"""Tenant admins through the admin and the console, in process with Django's test client: a
tenant admin of acme and initech sees exactly those tenants' keys, access rules, quotas, alerts,
usage records, usage pages and reports; every object of globex is a 404 and no id or name of
globex appears in any list, filter, autocomplete or export. Platform staff see everything."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission, User

from accounting.models import UsageRecord
from accounting.recorder import write_events
from accounting.rollups import usage_rollup
from quotas.models import ApiKey, CostQuota, ModelAccessRule, QuotaAlert, Tenant, TenantMembership
from quotas.tenancy import PLATFORM_STAFF_GROUP, TENANT_ADMINS_GROUP, is_platform
from tests.accounting.events import usage_event

pytestmark = pytest.mark.django_db(transaction=True)
DAY = dt.datetime(2026, 3, 10, 14, 20, tzinfo=dt.UTC)
OTHER = "globex-hidden"  # the tenant the tenant admin must never see a trace of
OTHER_MODEL = "globex-only-model"


@pytest.fixture
def world(make_key):
    acme = make_key("acme", name="acme-key")
    initech = make_key("initech", name="initech-key")
    other = make_key(OTHER, name="globex-key-name")
    other2 = make_key(OTHER, name="globex-second-key")
    keys = {"acme": acme, "initech": initech, "other": other, "other2": other2}
    rules = {
        name: ModelAccessRule.objects.create(tenant=k.tenant, pattern=f"{name}-pattern*", effect="allow")
        for name, k in (("acme", acme), ("initech", initech), ("other", other))
    }
    quotas = {
        "acme": CostQuota.objects.create(tenant=acme.tenant, period="month", limit_usd="10"),
        "initech-key": CostQuota.objects.create(key_id=initech.key_id, period="day", limit_usd="2"),
        "other": CostQuota.objects.create(tenant=other.tenant, period="month", limit_usd="99"),
        "other-key": CostQuota.objects.create(key_id=other.key_id, period="week", limit_usd="5"),
    }
    alerts = {
        name: QuotaAlert.objects.create(
            quota=quotas[name], period_key="2026-03", spent_usd="1", limit_usd="2", threshold="0.5"
        )
        for name in ("acme", "other-key")
    }
    write_events(
        [
            usage_event(acme, 1, at=DAY, model="m1", cost="0.10"),
            usage_event(initech, 2, at=DAY, model="m2", cost="0.25", status=502),
            usage_event(other, 3, at=DAY, model=OTHER_MODEL, cost="7"),
            usage_event(other2, 4, at=DAY + dt.timedelta(hours=1), model=OTHER_MODEL, cost="1"),
        ]
    )
    usage_rollup(lag=dt.timedelta(0))
    write_events([usage_event(acme, 5, at=DAY + dt.timedelta(days=1), model="m1", cost="0.05")])  # unrolled
    return {"keys": keys, "rules": rules, "quotas": quotas, "alerts": alerts}


def tenant_admin(*tenants: Tenant, username: str = "alice") -> User:
    user = User.objects.create_user(username, password="pw-alice-1", is_staff=True)
    user.groups.add(Group.objects.get(name=TENANT_ADMINS_GROUP))
    for tenant in tenants:
        TenantMembership.objects.create(user=user, tenant=tenant)
    return user


@pytest.fixture
def alice(world, client):
    keys = world["keys"]
    user = tenant_admin(keys["acme"].tenant, keys["initech"].tenant)
    client.force_login(user)
    return user


@pytest.fixture
def platform(world, client):
    user = User.objects.create_user("ops", password="pw-ops-1", is_staff=True)
    user.groups.add(Group.objects.get(name=PLATFORM_STAFF_GROUP))
    client.force_login(user)
    return user


def other_ids(world) -> dict[str, list[int]]:
    keys = world["keys"]
    return {
        "tenant": [keys["other"].tenant.pk],
        "apikey": [keys["other"].key_id, keys["other2"].key_id],
        "modelaccessrule": [world["rules"]["other"].pk],
        "costquota": [world["quotas"]["other"].pk, world["quotas"]["other-key"].pk],
        "quotaalert": [world["alerts"]["other-key"].pk],
        "usagerecord": list(
            UsageRecord.objects.filter(tenant_id=keys["other"].tenant.pk).values_list("pk", flat=True)
        ),
    }


URLS = {
    "tenant": "/admin/quotas/tenant/",
    "apikey": "/admin/quotas/apikey/",
    "modelaccessrule": "/admin/quotas/modelaccessrule/",
    "costquota": "/admin/quotas/costquota/",
    "quotaalert": "/admin/quotas/quotaalert/",
    "usagerecord": "/admin/accounting/usagerecord/",
}


def result_ids(response) -> list[int]:
    assert response.status_code == 200
    return sorted(obj.pk for obj in response.context["cl"].result_list)


def assert_no_trace_of_other(html: str, world) -> None:
    assert OTHER not in html
    assert "globex" not in html
    assert OTHER_MODEL not in html
    for model, ids in other_ids(world).items():
        for pk in ids:
            assert f"/{model}/{pk}/" not in html
            assert f'tenant={world["keys"]["other"].tenant.pk}"' not in html


def test_the_groups_carry_exactly_their_permissions():
    tenant_admins = Group.objects.get(name=TENANT_ADMINS_GROUP)
    assert sorted(
        f"{p.content_type.app_label}.{p.codename}"
        for p in tenant_admins.permissions.select_related("content_type")
    ) == [
        "accounting.view_usagerecord",
        "quotas.add_apikey",
        "quotas.add_costquota",
        "quotas.add_modelaccessrule",
        "quotas.change_apikey",
        "quotas.change_costquota",
        "quotas.change_modelaccessrule",
        "quotas.change_tenant",
        "quotas.delete_apikey",
        "quotas.delete_costquota",
        "quotas.delete_modelaccessrule",
        "quotas.view_apikey",
        "quotas.view_costquota",
        "quotas.view_modelaccessrule",
        "quotas.view_quotaalert",
        "quotas.view_tenant",
    ]
    platform = set(
        Group.objects.get(name=PLATFORM_STAFF_GROUP).permissions.values_list(
            "content_type__app_label", "codename"
        )
    )
    assert ("quotas", "all_tenants") in platform
    assert ("providers", "change_provider") in platform
    assert ("quotas", "add_tenantmembership") in platform
    assert not {app for app, _ in platform} - {"quotas", "providers", "accounting", "stored_responses"}


def test_a_tenant_admin_lists_exactly_their_tenants_objects(world, alice, client):
    keys, quotas = world["keys"], world["quotas"]
    mine = {keys["acme"].tenant.pk, keys["initech"].tenant.pk}
    expected = {
        "tenant": sorted(mine),
        "apikey": sorted([keys["acme"].key_id, keys["initech"].key_id]),
        "modelaccessrule": sorted([world["rules"]["acme"].pk, world["rules"]["initech"].pk]),
        "costquota": sorted([quotas["acme"].pk, quotas["initech-key"].pk]),
        "quotaalert": [world["alerts"]["acme"].pk],
        "usagerecord": sorted(UsageRecord.objects.filter(tenant_id__in=mine).values_list("pk", flat=True)),
    }
    assert len(expected["usagerecord"]) == 3
    for model, url in URLS.items():
        response = client.get(url)
        assert result_ids(response) == expected[model], model
        assert_no_trace_of_other(response.content.decode(), world)


def test_platform_staff_list_every_tenants_objects(world, platform, client):
    assert result_ids(client.get(URLS["tenant"])) == sorted(Tenant.objects.values_list("pk", flat=True))
    assert len(result_ids(client.get(URLS["tenant"]))) == 3
    assert result_ids(client.get(URLS["apikey"])) == sorted(ApiKey.objects.values_list("pk", flat=True))
    assert len(result_ids(client.get(URLS["costquota"]))) == 4
    assert len(result_ids(client.get(URLS["quotaalert"]))) == 2
    assert len(result_ids(client.get(URLS["usagerecord"]))) == 5
    assert client.get("/admin/providers/provider/").status_code == 200
    assert client.get("/admin/routing/").status_code == 200
    other = world["keys"]["other"]
    assert client.get(f"/admin/quotas/apikey/{other.key_id}/change/").status_code == 200
    assert client.get(f"/admin/usage/{other.tenant.pk}/").status_code == 200


def test_a_staff_user_with_no_membership_sees_no_tenant(world, client):
    user = User.objects.create_user("nobody", is_staff=True)
    user.groups.add(Group.objects.get(name=TENANT_ADMINS_GROUP))
    client.force_login(user)
    for url in URLS.values():
        assert result_ids(client.get(url)) == []
    totals = client.get("/api/usage/totals", {"start": "2026-03-10", "end": "2026-03-11"}).json()
    assert totals["rows"] == []


@pytest.mark.parametrize("page", ["change", "delete", "history"])
def test_another_tenants_objects_are_404_on_every_page(world, alice, client, page):
    for model, ids in other_ids(world).items():
        app = "accounting" if model == "usagerecord" else "quotas"
        for pk in ids:
            response = client.get(f"/admin/{app}/{model}/{pk}/{page}/")
            assert response.status_code == 404, (model, pk, page)
            assert_no_trace_of_other(response.content.decode(), world)
    # A missing id answers the same.
    assert client.get(f"/admin/quotas/apikey/999999/{page}/").status_code == 404


def test_posting_to_another_tenants_objects_changes_nothing(world, alice, client):
    other = world["keys"]["other"]
    response = client.post(f"/admin/quotas/apikey/{other.key_id}/delete/", {"post": "yes"})
    assert response.status_code == 404
    response = client.post(
        f"/admin/quotas/tenant/{other.tenant.pk}/change/", {"name": "renamed", "display_name": "x"}
    )
    assert response.status_code == 404
    # The changelist's actions only ever see the tenant admin's own rows.
    response = client.post(
        URLS["apikey"],
        {"action": "revoke_keys", "_selected_action": [str(other.key_id), str(other.key_id + 1)]},
    )
    assert response.status_code == 302
    response = client.post(
        URLS["modelaccessrule"],
        {"action": "delete_selected", "_selected_action": [str(world["rules"]["other"].pk)], "post": "yes"},
    )
    assert ApiKey.objects.filter(tenant=other.tenant, revoked_at__isnull=False).count() == 0
    assert ModelAccessRule.objects.filter(pk=world["rules"]["other"].pk).count() == 1
    assert Tenant.objects.filter(name=OTHER).count() == 1
    assert ApiKey.objects.filter(pk=other.key_id).count() == 1


def test_filters_offer_and_apply_only_their_tenants(world, alice, client):
    keys = world["keys"]
    response = client.get(URLS["apikey"])
    choices = [
        c["display"]
        for spec in response.context["cl"].filter_specs
        for c in spec.choices(response.context["cl"])
        if spec.title == "tenant"
    ]
    assert choices == ["All", "acme", "initech"]
    assert result_ids(client.get(URLS["apikey"], {"tenant": keys["acme"].tenant.pk})) == [keys["acme"].key_id]
    assert result_ids(client.get(URLS["apikey"], {"tenant": keys["other"].tenant.pk})) == []
    assert result_ids(client.get(URLS["apikey"], {"tenant__id__exact": keys["other"].tenant.pk})) == []
    assert result_ids(client.get(URLS["apikey"], {"q": "globex"})) == []
    # The request log's model filter lists the models of their tenants only.
    response = client.get(URLS["usagerecord"])
    html = response.content.decode()
    assert "?model=m1" in html and "?model=m2" in html
    assert_no_trace_of_other(html, world)
    # A tenant's tier and state are the platform's: no filter on them for a tenant admin.
    response = client.get(URLS["tenant"])
    assert [spec.title for spec in response.context["cl"].filter_specs] == ["log content"]


def test_autocomplete_offers_only_their_tenants_and_keys(world, alice, client):
    keys = world["keys"]
    response = client.get(
        "/admin/autocomplete/",
        {"app_label": "quotas", "model_name": "apikey", "field_name": "tenant", "term": ""},
    )
    assert response.status_code == 200
    assert sorted(r["text"] for r in response.json()["results"]) == ["acme", "initech"]
    response = client.get(
        "/admin/autocomplete/",
        {"app_label": "quotas", "model_name": "costquota", "field_name": "key", "term": ""},
    )
    assert sorted(int(r["id"]) for r in response.json()["results"]) == sorted(
        [keys["acme"].key_id, keys["initech"].key_id]
    )
    response = client.get(
        "/admin/autocomplete/",
        {"app_label": "quotas", "model_name": "apikey", "field_name": "tenant", "term": "glob"},
    )
    assert response.json()["results"] == []


def test_forms_offer_only_their_tenants_and_refuse_others(world, alice, client):
    keys = world["keys"]
    response = client.get("/admin/quotas/apikey/add/")
    form = response.context["adminform"].form
    assert sorted(t.name for t in form.fields["tenant"].queryset) == ["acme", "initech"]
    assert "tier" not in form.fields  # the platform's choice
    assert_no_trace_of_other(response.content.decode(), world)
    before = ApiKey.objects.count()
    response = client.post(
        "/admin/quotas/apikey/add/",
        {"tenant": keys["other"].tenant.pk, "name": "sneaky", "model_patterns": ""},
    )
    assert response.status_code == 200
    assert "tenant" in response.context["adminform"].form.errors
    assert ApiKey.objects.count() == before
    response = client.post(
        "/admin/quotas/costquota/add/",
        {"key": keys["other"].key_id, "period": "day", "limit_usd": "1", "hard": "on"},
    )
    assert response.status_code == 200
    assert "key" in response.context["adminform"].form.errors
    assert CostQuota.objects.count() == 4
    # Their own tenant: the key is issued.
    response = client.post(
        "/admin/quotas/apikey/add/", {"tenant": keys["acme"].tenant.pk, "name": "mine", "model_patterns": ""}
    )
    mine = ApiKey.objects.get(tenant=keys["acme"].tenant, name="mine")
    assert response.status_code == 302  # to the page that shows the secret once
    assert response["Location"] == f"/admin/quotas/apikey/{mine.pk}/issued/"
    assert client.get(response["Location"]).status_code == 200
    # A tenant's name, tier and state are the platform's: read-only on its page.
    response = client.get(f"/admin/quotas/tenant/{keys['acme'].tenant.pk}/change/")
    assert sorted(response.context["adminform"].form.fields) == ["display_name", "log_content"]


def test_platform_pages_are_refused_to_a_tenant_admin(world, alice, client):
    for url in (
        "/admin/providers/provider/",
        "/admin/providers/publicmodel/",
        "/admin/providers/deployment/",
        "/admin/quotas/ratetier/",
        "/admin/quotas/tenantmembership/",
        "/admin/accounting/deploymentprice/",
        "/admin/auth/user/",
    ):
        assert client.get(url).status_code == 403, url
    assert client.get("/admin/routing/").status_code == 403
    assert client.get("/admin/routing/stats.json").status_code == 403
    assert client.get("/admin/spend/").status_code == 403  # across every tenant
    assert client.get("/admin/live/").status_code == 403  # every tenant's requests as they finish
    assert client.get("/admin/quotas/tenant/add/").status_code == 403
    index = client.get("/admin/").content.decode()
    assert "/admin/providers/" not in index
    assert "/admin/quotas/apikey/" in index
    links = index.split('id="console-links"')[1].split("</ul>")[0]
    assert links.count("<li>") == 2
    assert '<a href="/admin/requests/">Request log</a>' in links
    assert "/admin/spend/" not in links and "/admin/routing/" not in links and "/admin/live/" not in links


def test_the_request_log_shows_only_their_tenants_requests(world, alice, client):
    keys = world["keys"]
    html = client.get("/admin/requests/").content.decode()
    mine = UsageRecord.objects.exclude(tenant_id=keys["other"].tenant.pk)
    assert mine.count() == 3
    for record in mine:
        assert f"/admin/requests/{record.pk}/" in html
    assert_no_trace_of_other(html, world)
    # Asking for the other tenant by name finds nothing, and its requests' pages are 404s.
    asked = client.get("/admin/requests/", {"tenant": OTHER}).content.decode()
    rows = asked.split('<table id="requests"', 1)[1].split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    assert "/admin/requests/" not in rows
    assert "No request matches." in rows
    assert OTHER_MODEL not in asked and "globex-key-name" not in asked
    for record_id in other_ids(world)["usagerecord"]:
        assert client.get(f"/admin/requests/{record_id}/").status_code == 404
    assert client.get(f"/admin/requests/{mine.first().pk}/").status_code == 200


def test_platform_staff_see_every_request_and_every_console_link(world, platform, client):
    html = client.get("/admin/requests/").content.decode()
    for record_id in UsageRecord.objects.values_list("pk", flat=True):
        assert f"/admin/requests/{record_id}/" in html
    assert client.get("/admin/spend/").status_code == 200
    links = client.get("/admin/").content.decode().split('id="console-links"')[1].split("</ul>")[0]
    assert links.count("<li>") == 5


def test_usage_pages_only_for_their_tenants(world, alice, client):
    keys = world["keys"]
    assert client.get(f"/admin/usage/{keys['other'].tenant.pk}/").status_code == 404
    response = client.get(f"/admin/usage/{keys['acme'].tenant.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert f'href="../{keys["initech"].tenant.pk}/?' in html
    assert_no_trace_of_other(html, world)
    assert f"../{keys['other'].tenant.pk}/" not in html


@pytest.mark.parametrize("group_by", [None, "model", "key", "provider"])
def test_reports_cover_only_their_tenants(world, alice, client, group_by):
    keys = world["keys"]
    params = {"start": "2026-03-10", "end": "2026-03-11", **({"group_by": group_by} if group_by else {})}
    totals = client.get("/api/usage/totals", params).json()["rows"]
    assert sum(r["requests"] for r in totals) == 3
    assert sum(Decimal(r["cost_usd"]) for r in totals) == Decimal("0.40")
    if group_by == "key":
        assert sorted(r["key_id"] for r in totals) == sorted([keys["acme"].key_id, keys["initech"].key_id])
    if group_by == "model":
        assert sorted(r["model"] for r in totals) == ["m1", "m2"]
    series = client.get("/api/usage/timeseries", {**params, "granularity": "hour"}).json()["rows"]
    assert sum(r["requests"] for r in series) == 3
    csv = client.get("/api/usage/timeseries", {**params, "granularity": "day", "format": "csv"})
    assert csv.status_code == 200
    body = csv.content.decode()
    assert_no_trace_of_other(body, world)
    # Days 10 and 11 (acme both days, initech on the 10th): one line per day and group, plus the header.
    assert len(body.splitlines()) == 1 + {None: 2, "provider": 2, "model": 3, "key": 3}[group_by]
    for row in (*totals, *series):
        assert row.get("key_id") not in (keys["other"].key_id, keys["other2"].key_id)
    summary = client.get("/api/usage/summary", params).json()
    assert (summary["requests"], summary["cost_usd"]) == (3, "0.4")
    one = client.get("/api/usage/summary", {**params, "tenant": "initech"}).json()
    assert (one["requests"], one["cost_usd"]) == (1, "0.25")
    refused = client.get("/api/usage/summary", {**params, "tenant": OTHER})
    assert refused.status_code == 404
    assert refused.json() == {"detail": f"No tenant named {OTHER!r}."}  # as for a tenant that does not exist
    missing = client.get("/api/usage/summary", {**params, "tenant": "no-such"})
    assert (missing.status_code, missing.json()) == (404, {"detail": "No tenant named 'no-such'."})


def test_platform_staff_reports_cover_every_tenant(world, platform, client):
    summary = client.get("/api/usage/summary", {"start": "2026-03-10", "end": "2026-03-11"}).json()
    assert (summary["requests"], summary["cost_usd"]) == (5, "8.4")
    other = client.get(
        "/api/usage/summary", {"start": "2026-03-10", "end": "2026-03-11", "tenant": OTHER}
    ).json()
    assert (other["requests"], other["cost_usd"]) == (2, "8")


def test_the_all_tenants_permission_alone_makes_platform_staff(world, client):
    user = User.objects.create_user("auditor", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(codename="all_tenants"), Permission.objects.get(codename="view_apikey")
    )
    client.force_login(user)
    assert result_ids(client.get(URLS["apikey"])) == sorted(ApiKey.objects.values_list("pk", flat=True))
    assert re.search(r"globex-key-name", client.get(URLS["apikey"]).content.decode())


def test_upgrading_keeps_existing_staff_seeing_every_tenant(world):
    from django.core.management import call_command

    call_command("migrate", "quotas", "0003", verbosity=0)
    try:
        Permission.objects.filter(codename="all_tenants").delete()  # as before the upgrade
        User.objects.create_user("old-staff", is_staff=True)
        User.objects.create_user("old-root", is_staff=True, is_superuser=True)
        User.objects.create_user("old-user")
    finally:
        call_command("migrate", "quotas", verbosity=0)
    holders = Permission.objects.get(codename="all_tenants").user_set.values_list("username", flat=True)
    assert list(holders) == ["old-staff"]
    assert User.objects.get(username="old-staff").groups.count() == 0  # nothing else given
    assert is_platform(User.objects.get(username="old-staff"))
    assert not is_platform(User.objects.get(username="old-user"))


def formset(prefix: str, rows: list[dict[str, object]], initial: int) -> dict[str, object]:
    data: dict[str, object] = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for i, row in enumerate(rows):
        data.update({f"{prefix}-{i}-{name}": value for name, value in row.items()})
    return data


def test_a_tenant_admin_manages_their_tenants_rules_and_quotas_on_its_page(world, alice, client):
    from quotas.revision import current_revision

    acme = world["keys"]["acme"]
    tenant = acme.tenant
    rule, quota = world["rules"]["acme"], world["quotas"]["acme"]
    before = current_revision()
    response = client.post(
        f"/admin/quotas/tenant/{tenant.pk}/change/",
        {
            "name": "renamed-by-tenant-admin",  # read-only for them: ignored
            "display_name": "Acme Corp",
            "log_content": "on",
            **formset(
                "access_rules",
                [
                    {"id": rule.pk, "tenant": tenant.pk, "pattern": rule.pattern, "effect": "allow"},
                    {"tenant": tenant.pk, "pattern": "gpt-4o*", "effect": "deny"},
                ],
                1,
            ),
            **formset(
                "quotas",
                [{"id": quota.pk, "tenant": tenant.pk, "period": "month", "limit_usd": "20", "hard": "on"}],
                1,
            ),
            **formset("keys", [{"id": acme.key_id, "tenant": tenant.pk}], 1),
        },
    )
    assert response.status_code == 302, response.context and response.context["errors"]
    tenant.refresh_from_db()
    assert (tenant.name, tenant.display_name, tenant.log_content) == ("acme", "Acme Corp", True)
    assert sorted(tenant.access_rules.values_list("effect", "pattern")) == [
        ("allow", "acme-pattern*"),
        ("deny", "gpt-4o*"),
    ]
    quota.refresh_from_db()
    assert quota.limit_usd == Decimal("20")
    assert current_revision() == before + 1


def test_platform_staff_make_a_tenant_admin_in_the_admin(world, client):
    from django.test import Client

    keys = world["keys"]
    root = User.objects.create_superuser("root", "root@example.com", "pw-root-1")
    bob = User.objects.create_user("bob", is_staff=True)
    client.force_login(root)
    response = client.post(
        "/admin/quotas/tenantmembership/add/", {"user": bob.pk, "tenant": keys["initech"].tenant.pk}
    )
    assert response.status_code == 302
    assert list(TenantMembership.objects.filter(user=bob).values_list("tenant__name", flat=True)) == [
        "initech"
    ]
    bob.groups.add(Group.objects.get(name=TENANT_ADMINS_GROUP))
    as_bob = Client()
    as_bob.force_login(bob)
    assert result_ids(as_bob.get(URLS["apikey"])) == [keys["initech"].key_id]
