"""The reports API for staff (session or DRF token), in process: exact totals, time series and
CSV for any tenant, and refusals for everyone else. (Gateway keys: tests/e2e/test_usage_reports.py.)"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from django.contrib.auth.models import Permission, User
from rest_framework.authtoken.models import Token

from accounting.recorder import write_events
from accounting.rollups import usage_rollup
from tests.accounting.events import usage_event

pytestmark = pytest.mark.django_db(transaction=True)
DAY = dt.datetime(2026, 3, 10, 14, 20, tzinfo=dt.UTC)


@pytest.fixture
def usage(make_key):
    a, b = make_key("acme", name="a"), make_key("globex", name="b")
    write_events(
        [
            usage_event(a, 1, at=DAY, model="m1", cost="0.10"),
            usage_event(a, 2, at=DAY + dt.timedelta(hours=1), model="m2", cost="0.25", status=502),
            usage_event(b, 3, at=DAY, model="m1", cost="7"),
        ]
    )
    usage_rollup(lag=dt.timedelta(0))
    write_events([usage_event(a, 4, at=DAY + dt.timedelta(days=1), model="m1", cost="0.05")])  # not rolled up
    return a, b


@pytest.fixture
def staff(client):
    user = User.objects.create_user("finance", password="pw-finance-1", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="all_tenants"))  # platform staff
    client.force_login(user)
    return user


def test_staff_summary_of_one_tenant_includes_unrolled_records(usage, staff, client):
    response = client.get(
        "/api/usage/summary", {"start": "2026-03-10", "end": "2026-03-11", "tenant": "acme"}
    )
    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("requests", "prompt_tokens", "completion_tokens", "errors", "cost_usd")} == {
        "requests": 3,
        "prompt_tokens": 700,
        "completion_tokens": 70,
        "errors": 1,
        "cost_usd": "0.4",
    }
    everyone = client.get("/api/usage/summary", {"start": "2026-03-10", "end": "2026-03-11"}).json()
    assert (everyone["requests"], everyone["cost_usd"]) == (4, "7.4")


def test_staff_time_series_by_hour_grouped_by_model_and_its_csv(usage, staff, client):
    params = {"start": "2026-03-10", "end": "2026-03-10", "granularity": "hour", "group_by": "model"}
    rows = client.get("/api/usage/timeseries", params).json()["rows"]
    assert [(r["bucket"], r["model"], r["requests"], r["cost_usd"]) for r in rows] == [
        ("2026-03-10T14:00:00+00:00", "m1", 2, "7.1"),
        ("2026-03-10T15:00:00+00:00", "m2", 1, "0.25"),
    ]
    csv = client.get("/api/usage/timeseries", {**params, "tenant": "acme", "format": "csv"})
    assert csv.status_code == 200
    assert csv["content-type"].startswith("text/csv")
    assert csv.content.decode().splitlines() == [
        "bucket,model,requests,errors,prompt_tokens,completion_tokens,cached_tokens,cost_usd",
        "2026-03-10T14:00:00+00:00,m1,1,0,100,10,0,0.1",
        "2026-03-10T15:00:00+00:00,m2,1,1,200,20,0,0.25",
    ]


def test_staff_by_drf_token_totals_grouped_by_key(usage, client):
    user = User.objects.create_user("ops", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="all_tenants"))
    token = Token.objects.create(user=user)
    a, b = usage
    response = client.get(
        "/api/usage/totals",
        {"start": "2026-03-01", "end": "2026-03-31", "group_by": "key"},
        HTTP_AUTHORIZATION=f"Token {token.key}",
    )
    assert response.status_code == 200
    rows = response.json()["rows"]
    assert [(r["key_id"], r["key_prefix"], r["requests"]) for r in rows] == sorted(
        [(a.key_id, f"gw-{a.key_id}", 3), (b.key_id, f"gw-{b.key_id}", 1)], key=lambda r: str(r[0])
    )


def test_everyone_else_is_refused(usage, client):
    params = {"start": "2026-03-10", "end": "2026-03-11"}
    assert client.get("/api/usage/summary", params).status_code in (401, 403)
    client.force_login(User.objects.create_user("plain", password="pw-plain-1"))
    assert client.get("/api/usage/summary", params).status_code == 403
    assert client.get("/api/usage/summary", {**params, "tenant": "acme"}).status_code == 403


def test_bad_parameters_are_400_and_unknown_tenants_404(usage, staff, client):
    assert client.get("/api/usage/summary", {"start": "2026-03-10"}).status_code == 400
    assert client.get("/api/usage/summary", {"start": "2026-03-10", "end": "2026-03-01"}).status_code == 400
    bad = {"start": "2026-03-10", "end": "2026-03-11", "granularity": "week"}
    assert client.get("/api/usage/timeseries", bad).status_code == 400
    nobody = {"start": "2026-03-10", "end": "2026-03-11", "tenant": "nobody"}
    assert client.get("/api/usage/summary", nobody).status_code == 404


def test_staff_totals_and_csv_grouped_by_tenant(usage, staff, client):
    a, b = usage
    params = {"start": "2026-03-10", "end": "2026-03-11", "group_by": "tenant"}
    response = client.get("/api/usage/totals", params)
    assert response.status_code == 200
    rows = response.json()["rows"]
    assert [
        (r["tenant_id"], r["tenant_name"], r["requests"], r["errors"], r["cost_usd"]) for r in rows
    ] == sorted(
        [(a.tenant.pk, "acme", 3, 1, "0.4"), (b.tenant.pk, "globex", 1, 0, "7")], key=lambda r: str(r[0])
    )
    series = client.get("/api/usage/timeseries", {**params, "granularity": "day"}).json()["rows"]
    assert [(r["bucket"][:10], r["tenant_name"], r["requests"], r["cost_usd"]) for r in series] == sorted(
        [
            ("2026-03-10", "acme", 2, "0.35"),
            ("2026-03-10", "globex", 1, "7"),
            ("2026-03-11", "acme", 1, "0.05"),
        ],
        key=lambda r: (r[0], str(a.tenant.pk if r[1] == "acme" else b.tenant.pk)),
    )
    csv = client.get("/api/usage/totals", {**params, "format": "csv"}).content.decode().splitlines()
    assert (
        csv[0]
        == "tenant_id,tenant_name,requests,errors,prompt_tokens,completion_tokens,cached_tokens,cost_usd"
    )
    assert sorted(csv[1:]) == sorted(
        [f"{a.tenant.pk},acme,3,1,700,70,0,0.4", f"{b.tenant.pk},globex,1,0,300,30,0,7"]
    )


def test_group_by_tenant_is_refused_to_everyone_but_staff(usage, client):
    params = {"start": "2026-03-10", "end": "2026-03-11", "group_by": "tenant"}
    assert client.get("/api/usage/totals", params).status_code in (401, 403)
    client.force_login(User.objects.create_user("plain", password="pw-plain-1"))
    refused = client.get("/api/usage/totals", params)
    assert refused.status_code == 403
    assert set(refused.json()) == {"detail"}
    assert "globex" not in refused.content.decode()


def test_totals_by_subject_read_every_raw_record_of_the_window(make_key, staff, client):
    """Bearer tokens' subjects: rolled-up and unrolled records alike (the rollups carry no
    subject); a key's own requests group under a null subject."""
    a = make_key("acme", name="a")
    with_subject = [
        dataclasses.replace(usage_event(a, 1, at=DAY, model="m1", cost="0.10"), key_id=0, subject="ada@acme"),
        dataclasses.replace(usage_event(a, 2, at=DAY, model="m1", cost="0.20"), key_id=0, subject="bob@acme"),
        dataclasses.replace(usage_event(a, 3, at=DAY, model="m2", cost="0.30"), key_id=0, subject="ada@acme"),
    ]
    write_events([*with_subject, usage_event(a, 4, at=DAY, model="m1", cost="1")])
    usage_rollup(lag=dt.timedelta(0))
    later = usage_event(a, 5, at=DAY + dt.timedelta(days=1), model="m1", cost="0.05")
    write_events([dataclasses.replace(later, key_id=0, subject="bob@acme")])  # not rolled up

    params = {"start": "2026-03-10", "end": "2026-03-11", "tenant": "acme", "group_by": "subject"}
    rows = client.get("/api/usage/totals", params).json()["rows"]
    assert [(r["subject"], r["requests"], r["prompt_tokens"], r["cost_usd"]) for r in rows] == [
        (None, 1, 400, "1"),
        ("ada@acme", 2, 400, "0.4"),
        ("bob@acme", 2, 700, "0.25"),
    ]
    csv = client.get("/api/usage/totals", {**params, "format": "csv"}).content.decode().splitlines()
    assert csv[0] == "subject,requests,errors,prompt_tokens,completion_tokens,cached_tokens,cost_usd"
    assert csv[1:] == [",1,0,400,40,0,1", "ada@acme,2,0,400,40,0,0.4", "bob@acme,2,0,700,70,0,0.25"]
