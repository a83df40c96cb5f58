"""The admin usage page per tenant, in process: the charts' data from the rollups (every day of
the range, zero where nothing happened), quota spend against limits, top keys; staff only."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import User

from accounting.recorder import write_events
from accounting.rollups import usage_rollup
from quotas.models import CostQuota
from tests.gateway_site.console.console_pages import chart_specs, series
from tests.gateway_site.console.test_usage_api import usage_event

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tenant_usage(make_key):
    a = make_key("acme", name="a")
    other = make_key("globex", name="b")
    now = dt.datetime.now(dt.UTC)
    write_events(
        [
            usage_event(a, 1, at=now - dt.timedelta(days=2), model="m1", cost="0.25"),
            usage_event(a, 2, at=now - dt.timedelta(days=1), model="m2", cost="0.50", status=500),
            usage_event(other, 3, at=now, model="<script>x</script>", cost="3"),
        ]
    )
    usage_rollup(lag=dt.timedelta(0))
    write_events([usage_event(a, 4, at=now, model="m1", cost="0.25")])  # not rolled up yet
    CostQuota.objects.create(tenant=a.tenant, period="lifetime", limit_usd="2", hard=True)
    return a


def test_the_usage_page_charts_the_tenants_usage_quotas_and_top_keys(tenant_usage, client):
    client.force_login(User.objects.create_user("admin", is_staff=True, is_superuser=True))
    response = client.get(f"/admin/usage/{tenant_usage.tenant.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    charts = chart_specs(html)
    assert sorted(charts) == ["chart-cost", "chart-models", "chart-requests", "chart-tokens"]
    today = dt.datetime.now(dt.UTC).date()
    days = [(today - dt.timedelta(days=29 - n)).isoformat() + "T00:00:00" for n in range(30)]
    # The last 30 days, every one of them, days without usage as zero.
    cost = series(charts["chart-cost"], "cost")
    assert [p[0] for p in cost] == days
    assert [p[2] for p in cost][-3:] == ["$0.25", "$0.50", "$0.25"]
    assert [p[1] for p in cost][:-3] == [0] * 27
    assert (charts["chart-cost"]["unit"], charts["chart-cost"]["axis"]) == ("usd", "cost (US dollars)")
    assert [p[1] for p in series(charts["chart-requests"], "requests")][-3:] == [1, 1, 1]
    assert [p[1] for p in series(charts["chart-requests"], "errors")][-3:] == [0, 1, 0]
    assert series(charts["chart-models"], "tokens") == [
        ("m1", 550, "550 tokens"),  # requests 1 and 4
        ("m2", 220, "220 tokens"),
    ]
    assert '<strong id="total-requests">3</strong>' in html
    assert '<strong id="total-cost">$1.00</strong>' in html  # 0.25 + 0.50 + 0.25
    assert "script>x" not in html  # another tenant's data never appears (and labels are escaped)
    quotas = html.split('id="quotas"')[1].split("</table>")[0]
    assert "lifetime" in quotas and '<td class="num">$2.00</td>' in quotas
    assert f"gw-{tenant_usage.key_id}" in html.split('id="top-keys"')[1]


def test_the_usage_page_takes_a_range_and_hours(tenant_usage, client):
    client.force_login(User.objects.create_user("admin", is_staff=True, is_superuser=True))
    today = dt.datetime.now(dt.UTC).date()
    start = (today - dt.timedelta(days=1)).isoformat()
    html = client.get(
        f"/admin/usage/{tenant_usage.tenant.pk}/",
        {"start": start, "end": today.isoformat(), "granularity": "hour"},
    ).content.decode()
    cost = series(chart_specs(html)["chart-cost"], "cost")
    assert len(cost) == 48
    assert sum(p[1] for p in cost) == 0.75  # yesterday's 0.50 and today's 0.25
    assert '<strong id="total-requests">2</strong>' in html


def test_the_usage_page_is_for_staff_only(tenant_usage, client):
    client.force_login(User.objects.create_user("plain"))
    response = client.get(f"/admin/usage/{tenant_usage.tenant.pk}/")
    assert response.status_code == 302
    assert "/admin/login/" in response["location"]
