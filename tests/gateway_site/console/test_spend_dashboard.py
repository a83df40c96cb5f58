"""The spend dashboard, in process: totals equal to the reports API's, a zero-filled timeline
per chart with its unit, cost per group, top tenants/models/keys by cost with links down to a
tenant's page, the aggregates cached, staff only."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache

from accounting.recorder import write_events
from accounting.rollups import usage_rollup
from quotas.money import usd
from tests.accounting.events import usage_event
from tests.conftest import platform_staff
from tests.gateway_site.console.console_pages import chart_specs, series

pytestmark = pytest.mark.django_db(transaction=True)
DAY = dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC)
RANGE = {"start": "2026-03-09", "end": "2026-03-12", "granularity": "day"}


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def usage(make_key):
    a1, a2, b = make_key("acme", name="a1"), make_key("acme", name="a2"), make_key("globex", name="b")
    write_events(
        [
            usage_event(a1, 1, at=DAY, model="gpt-small", cost="0.0179"),
            usage_event(
                a2, 2, at=DAY + dt.timedelta(hours=2), model="claude-sonnet-4", cost="1.5", status=502
            ),
            usage_event(b, 3, at=DAY + dt.timedelta(days=2), model="gpt-small", cost="1234.5"),
        ]
    )
    usage_rollup(lag=dt.timedelta(0))
    # ingested after the rollup: still counted
    write_events([usage_event(a1, 4, at=DAY + dt.timedelta(days=2), model="gpt-small", cost="0.0000375")])
    return a1, a2, b


@pytest.fixture
def staff(client):
    client.force_login(platform_staff("finance"))


def test_totals_charts_groups_and_tops(usage, staff, client):
    a1, a2, b = usage
    response = client.get("/admin/spend/", {**RANGE, "group_by": "tenant"})
    assert response.status_code == 200
    html = response.content.decode()
    api = client.get("/api/usage/summary", {"start": RANGE["start"], "end": RANGE["end"]}).json()
    assert api["cost_usd"] == "1236.0179375"
    assert f'<span class="value" id="total-cost">{usd(api["cost_usd"])}</span>' in html
    assert usd(api["cost_usd"]) == "$1,236.017938"
    assert '<span class="value" id="total-requests">4</span>' in html
    assert '<span class="value" id="total-tokens">1100</span>' in html  # (100+200+300+400) + a tenth
    assert '<span class="value" id="total-errors">1 (25.0%)</span>' in html
    assert '<span class="value" id="mean-latency">1 ms</span>' in html

    charts = chart_specs(html)
    assert sorted(charts) == ["chart-cost", "chart-latency", "chart-requests", "chart-tokens"]
    cost = charts["chart-cost"]
    assert (cost["unit"], cost["axis"], cost["time_unit"], cost["stacked"]) == (
        "usd",
        "cost (US dollars)",
        "day",
        True,
    )
    assert [d["label"] for d in cost["datasets"]] == ["globex", "acme"]  # by cost
    assert series(cost, "acme") == [
        ("2026-03-09T00:00:00", 0, "$0.00"),
        ("2026-03-10T00:00:00", 1.5179, "$1.5179"),
        ("2026-03-11T00:00:00", 0, "$0.00"),
        ("2026-03-12T00:00:00", 0.0000375, "$0.000038"),
    ]
    assert [p[2] for p in series(cost, "globex")] == ["$0.00", "$0.00", "$0.00", "$1,234.50"]
    requests = charts["chart-requests"]
    assert requests["axis"] == "requests"
    assert [p[1] for p in series(requests, "requests")] == [0, 2, 0, 2]
    assert [p[1] for p in series(requests, "errors")] == [0, 1, 0, 0]
    assert [p[2] for p in series(charts["chart-tokens"], "tokens")] == [
        "0 tokens",
        "330 tokens",
        "0 tokens",
        "770 tokens",
    ]
    assert charts["chart-latency"]["axis"] == "latency (milliseconds)"
    latency = series(charts["chart-latency"], "mean latency")
    assert [(p[1], p[2]) for p in latency] == [
        (None, "no requests"),
        (1.0, "1.0 ms"),
        (None, "no requests"),
        (1.0, "1.0 ms"),
    ]

    groups = html.split('id="groups"')[1].split("</table>")[0]
    query = "start=2026-03-09&amp;end=2026-03-12&amp;granularity=day"
    link = f'<a href="/admin/usage/{a1.tenant.pk}/?{query}">acme</a>'
    assert link in groups
    assert groups.count("<tr>") == 3  # header and two tenants
    tops = {
        name: html.split(f'id="{name}"')[1].split("</table>")[0]
        for name in ("top-tenants", "top-models", "top-keys")
    }
    assert tops["top-tenants"].index("globex") < tops["top-tenants"].index("acme")
    assert tops["top-models"].count("<tr>") == 3 and "claude-sonnet-4" in tops["top-models"]
    assert "$1,234.517938" in tops["top-models"]  # gpt-small: 0.0179 + 1234.5 + 0.0000375
    assert [f"gw-{k.key_id}" in tops["top-keys"] for k in (a1, a2, b)] == [True, True, True]


def test_grouping_by_model_and_hourly_buckets(usage, staff, client):
    params = {"start": "2026-03-10", "end": "2026-03-11", "granularity": "hour", "group_by": "model"}
    html = client.get("/admin/spend/", params).content.decode()
    cost = chart_specs(html)["chart-cost"]
    assert cost["time_unit"] == "hour"
    assert [d["label"] for d in cost["datasets"]] == ["claude-sonnet-4", "gpt-small"]
    points = series(cost, "gpt-small")
    assert len(points) == 48
    assert [p for p in points if p[1]] == [("2026-03-10T09:00:00", 0.0179, "$0.0179")]
    assert series(cost, "claude-sonnet-4")[11] == ("2026-03-10T11:00:00", 1.5, "$1.50")


def test_a_range_too_long_for_hours_falls_back_to_days(usage, staff, client):
    params = {"start": "2026-01-01", "end": "2026-03-31", "granularity": "hour"}
    html = client.get("/admin/spend/", params).content.decode()
    assert "Hourly charts cover at most 31 days: showing days." in html
    assert len(series(chart_specs(html)["chart-tokens"], "tokens")) == 90


def test_the_aggregates_are_cached_per_range(usage, staff, client, settings):
    a1, _, _ = usage
    first = client.get("/admin/spend/", RANGE).content.decode()
    assert '<span class="value" id="total-requests">4</span>' in first
    write_events([usage_event(a1, 9, at=DAY, model="gpt-small", cost="1")])
    cached = client.get("/admin/spend/", RANGE).content.decode()
    assert '<span class="value" id="total-requests">4</span>' in cached
    other = client.get("/admin/spend/", {**RANGE, "group_by": "model"}).content.decode()
    assert '<span class="value" id="total-requests">5</span>' in other
    cache.clear()
    fresh = client.get("/admin/spend/", RANGE).content.decode()
    assert '<span class="value" id="total-requests">5</span>' in fresh


def test_staff_only(usage, client):
    assert client.get("/admin/spend/").status_code == 302
    client.force_login(User.objects.create_user("plain"))
    response = client.get("/admin/spend/", RANGE)
    assert response.status_code == 302
    assert "/admin/login/" in response["location"]
