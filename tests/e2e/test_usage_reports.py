"""The reports API and ``/v1/usage`` through a running gateway with gateway keys: a key reads
its own tenant only, whatever it asks for; ``/v1/usage`` tells a key its spend and what
remains of each cost quota, after real requests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import httpx
import pytest

from accounting.models import UsageRecord
from accounting.recorder import write_events
from tests.accounting.events import usage_event
from tests.conftest import wait_for
from tests.e2e.conftest import Proxy, expected_cost

pytestmark = pytest.mark.e2e

QUOTA = """
tenants:
  - name: acme
    quotas:
      - period: month
        limit_usd: "10"
        hard: true
"""


def test_a_key_reads_only_its_own_tenant_through_every_report_endpoint(start_proxy, make_key):
    proxy: Proxy = start_proxy(extra_yaml=QUOTA)
    other = make_key("globex", name="other")
    today = dt.datetime.now(dt.UTC)
    write_events([usage_event(other, 1, at=today, model="secret-model", cost="9")])
    assert proxy.http.post("/v1/chat/completions", json=proxy.chat_body()).status_code == 200
    wait_for(lambda: UsageRecord.objects.count() == 2)
    day = today.date().isoformat()
    dates = {"start": day, "end": day}

    summary = proxy.http.get("/api/usage/summary", params=dates)
    assert summary.status_code == 200
    body = summary.json()
    assert {k: body[k] for k in ("requests", "prompt_tokens", "completion_tokens", "cost_usd")} == {
        "requests": 1,
        "prompt_tokens": 19,
        "completion_tokens": 3,
        "cost_usd": str(expected_cost(19, 3).normalize()),
    }
    for path, extra in [
        ("/api/usage/summary", {}),
        ("/api/usage/totals", {"group_by": "model"}),
        ("/api/usage/timeseries", {"granularity": "hour", "group_by": "key"}),
    ]:
        assert proxy.http.get(path, params={**dates, **extra, "tenant": "globex"}).status_code == 403
        for fmt in ("json", "csv"):
            response = proxy.http.get(path, params={**dates, **extra, "format": fmt})
            assert response.status_code == 200
            assert "secret-model" not in response.text
            if fmt == "json":
                data = response.json()
                assert sum(r["requests"] for r in data.get("rows", [data])) == 1
                assert all(
                    r.get("key_id", proxy.key.key_id) == proxy.key.key_id for r in data.get("rows", [])
                )
    rows = proxy.http.get("/api/usage/totals", params={**dates, "group_by": "model"}).json()["rows"]
    assert [(r["model"], r["requests"]) for r in rows] == [("gpt-4o-mini", 1)]
    for path in ("/api/usage/totals", "/api/usage/timeseries"):  # the tenants' names are for staff
        by_tenant = proxy.http.get(path, params={**dates, "group_by": "tenant", "granularity": "day"})
        assert (by_tenant.status_code, by_tenant.json()) == (
            403,
            {"detail": "Only staff can group usage by tenant."},
        )

    bad = httpx.get(
        f"{proxy.gateway.base_url}/api/usage/summary",
        params=dates,
        headers={"Authorization": "Bearer gw-nope"},
    )
    assert bad.status_code == 401

    usage = proxy.http.get("/v1/usage")
    assert usage.status_code == 200
    report = usage.json()
    today = dt.datetime.now(dt.UTC).date()
    assert (report["month"]["start"], report["month"]["end"]) == (
        today.replace(day=1).isoformat(),
        today.isoformat(),
    )
    assert report["month"]["requests"] == 1
    assert report["month"]["cost_usd"] == str(expected_cost(19, 3).normalize())
    [quota] = report["quotas"]
    spent = Decimal(quota["spent_usd"])
    assert spent == expected_cost(19, 3).quantize(Decimal("0.000001"), rounding="ROUND_CEILING")
    assert (quota["limit_usd"], quota["period"], quota["hard"]) == ("10.0000", "month", True)
    assert Decimal(quota["remaining_usd"]) == Decimal("10") - spent
