"""The console's data pages in headless Chromium against a gateway subprocess, offline (every
request to anything but the gateway is aborted and counted): the spend dashboard's totals equal
the reports API's for the same range, written by the one money formatter; its charts are drawn
by the vendored Chart.js with a time axis and titled y-axes; the tenant usage page is reached
from the dashboard and draws its charts the same way; the request log filters to an exact
number of rows, and a request's page shows the stored content of a tenant that logs it and
none for another; the routing overview draws each deployment's latency and error rate over
time. Screenshots go to /tmp/console-shots/."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.contrib.auth import get_user_model

from accounting.models import UsageRecord
from accounting.recorder import write_events
from accounting.rollups import usage_rollup
from gateway_site.runtime.content_store import ContentStore
from providers.models import Deployment
from quotas.money import usd
from tests.accounting.events import usage_event
from tests.conftest import mock_echo_yaml
from tests.e2e.test_admin_browser import CHROMIUM_ARGS, PASSWORD, chromium  # noqa: F401 (fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path("/tmp/console-shots")
CHART = "Chart.getChart(document.querySelector"


@contextlib.contextmanager
def signed_in(executable: str, base: str, path: str) -> Iterator:
    """A headless Chromium page of the gateway at ``base``, signed in as "root" and on ``path``.
    Every request to anything but the gateway is aborted, and there must have been none: the
    console works offline."""
    from playwright.sync_api import sync_playwright

    outside: list[str] = []

    def only_the_gateway(route):
        if route.request.url.startswith(base):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(20_000)
            page.route("**/*", only_the_gateway)
            page.goto(f"{base}/admin/login/?next={path}")
            page.fill("#id_username", "root")
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            yield page
        finally:
            browser.close()
    assert outside == []


# What Chart.js drew: per chart, the x scale's type and the y (or x, for bars by name) title.
DRAWN = """() => Array.from(document.querySelectorAll('figure.console-chart')).map(f => {
  const chart = Chart.getChart(f.querySelector('canvas'));
  const s = chart.options.scales;
  return {id: f.dataset.chart, x: s.x.type, xTitle: s.x.title.text, yTitle: s.y.title.text,
          points: chart.data.datasets.map(d => d.data.length),
          ticks: chart.scales.y.ticks.map(t => t.label).filter(Boolean).slice(-1)[0]};
})"""


def test_the_dashboard_and_the_usage_page_in_a_browser(chromium, gateway_factory, make_key):  # noqa: F811
    from playwright.sync_api import expect

    acme, globex = make_key("acme", name="a"), make_key("globex", name="g")
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=30, second=0, microsecond=0)
    write_events(
        [
            usage_event(acme, n, at=today - dt.timedelta(days=3 * n), model="claude-sonnet-4", cost="0.0179")
            for n in range(1, 6)
        ]
        + [usage_event(globex, 9, at=today - dt.timedelta(days=20), model="gpt-4o-mini", cost="1234.5")]
    )
    usage_rollup(lag=dt.timedelta(0))
    get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    base = gateway_factory().base_url
    start, end = (today - dt.timedelta(days=89)).date().isoformat(), today.date().isoformat()
    SHOTS.mkdir(parents=True, exist_ok=True)

    with signed_in(chromium, base, "/admin/spend/") as page:
        expect(page).to_have_url(f"{base}/admin/spend/")
        # 90 days through the form, as a person would pick them
        page.fill("input[name=start]", start)
        page.fill("input[name=end]", end)
        page.click("#range-form input[type=submit]")
        expect(page.locator("figure.console-chart[data-drawn='1']")).to_have_count(4)
        cookies = {c["name"]: c["value"] for c in page.context.cookies()}
        api = httpx.get(
            f"{base}/api/usage/summary", params={"start": start, "end": end}, cookies=cookies, timeout=10
        ).json()
        assert api["cost_usd"] == "1234.5895"
        expect(page.locator("#total-cost")).to_have_text(usd(api["cost_usd"]))
        expect(page.locator("#total-cost")).to_have_text("$1,234.5895")
        expect(page.locator("#total-requests")).to_have_text(str(api["requests"]))
        drawn = {c["id"]: c for c in page.evaluate(DRAWN)}
        assert {name: (c["x"], c["xTitle"], c["yTitle"]) for name, c in drawn.items()} == {
            "chart-cost": ("time", "day (UTC)", "cost (US dollars)"),
            "chart-tokens": ("time", "day (UTC)", "tokens"),
            "chart-requests": ("time", "day (UTC)", "requests"),
            "chart-latency": ("time", "day (UTC)", "latency (milliseconds)"),
        }
        assert drawn["chart-cost"]["points"] == [90, 90]  # two tenants, every day of the 90
        assert drawn["chart-cost"]["ticks"].startswith("$")
        # the x labels of 90 days do not overlap: Chart.js skipped enough of them
        shown = page.evaluate(f"() => {CHART}('#chart-cost-figure canvas')).scales.x.ticks.length")
        assert 3 <= shown <= 30
        page.screenshot(path=str(SHOTS / "spend-dashboard.png"), full_page=True)

        page.click("#top-tenants >> text=acme")
        expect(page).to_have_url(
            f"{base}/admin/usage/{acme.tenant.pk}/?start={start}&end={end}&granularity=day"
        )
        expect(page.locator("figure.console-chart[data-drawn='1']")).to_have_count(4)
        expect(page.locator("#total-cost")).to_have_text("$0.0895")
        drawn = {c["id"]: c for c in page.evaluate(DRAWN)}
        assert (drawn["chart-cost"]["x"], drawn["chart-cost"]["yTitle"]) == ("time", "cost (US dollars)")
        assert drawn["chart-cost"]["points"] == [90]
        assert (drawn["chart-models"]["x"], drawn["chart-models"]["xTitle"]) == ("linear", "tokens")
        # the model's name is drawn whole on the y-axis
        names = page.evaluate(
            f"() => {CHART}('#chart-models-figure canvas')).scales.y.ticks.map(t => t.label)"
        )
        assert names == ["claude-sonnet-4"]
        page.screenshot(path=str(SHOTS / "tenant-usage.png"), full_page=True)


def test_the_request_log_in_a_browser(chromium, gateway_factory, make_key):  # noqa: F811
    from playwright.sync_api import expect

    acme, globex = make_key("acme", name="a"), make_key("globex", name="g")
    tenant = acme.tenant
    tenant.log_content = True
    tenant.save()
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    write_events(
        [
            dataclasses.replace(
                usage_event(acme, n, at=now - dt.timedelta(minutes=n), model="gpt-4o-mini", cost="0.0179"),
                status=502 if n % 3 == 0 else 200,
                attempts=2 if n % 3 == 0 else 1,
            )
            for n in range(1, 13)
        ]
        + [
            usage_event(globex, n, at=now - dt.timedelta(minutes=n), model="gpt-4o-mini", cost="1")
            for n in (1, 2)
        ]
    )
    logged = UsageRecord.objects.get(request_id__startswith=f"req_{acme.key_id}_3_")
    unlogged = UsageRecord.objects.get(request_id__startswith=f"req_{globex.key_id}_1_")
    store = ContentStore()
    store.submit(
        request_id=logged.request_id,
        created_at=logged.created_at.timestamp(),
        tenant_id=tenant.pk,
        content=lambda: (["Summarise this for jo@example.com"], "Here is the summary."),
    )
    assert store.wait_idle(10)
    get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    base = gateway_factory().base_url
    SHOTS.mkdir(parents=True, exist_ok=True)

    with signed_in(chromium, base, "/admin/requests/") as page:
        expect(page.locator("tr.request-row")).to_have_count(14)
        page.fill("input[name=tenant]", "acme")
        page.fill("input[name=status]", "errors")
        page.click("#log-filters input[type=submit]")
        expect(page.locator("tr.request-row")).to_have_count(4)  # requests 3, 6, 9 and 12
        expect(page.locator("tr.request-row").first.locator("td").nth(6)).to_have_text("502")
        expect(page.locator("tr.request-row").first.locator("td").nth(8)).to_have_text("$0.0179")
        page.screenshot(path=str(SHOTS / "request-log.png"), full_page=True)

        page.locator("tr.request-row").first.locator("a").click()
        expect(page).to_have_url(f"{base}/admin/requests/{logged.pk}/")
        expect(page.locator("#attempts")).to_have_text("2")
        expect(page.locator("#cost")).to_have_text("$0.0179")
        expect(page.locator("pre.content-prompt")).to_have_count(1)
        expect(page.locator("pre.content-prompt")).to_contain_text("Summarise this for [EMAIL:")
        expect(page.locator("pre.content-reply")).to_have_text("Here is the summary.")
        assert "jo@example.com" not in page.content()
        page.screenshot(path=str(SHOTS / "request-detail.png"), full_page=True)

        page.goto(f"{base}/admin/requests/{unlogged.pk}/")
        none = "No content: the tenant does not log content."
        expect(page.locator("#request-content")).to_contain_text(none)
        expect(page.locator("pre.content-prompt")).to_have_count(0)


def test_routing_history_in_a_browser(chromium, gateway_factory, make_key, configure):  # noqa: F811
    from playwright.sync_api import expect

    configure(mock_echo_yaml())
    deployment = Deployment.objects.get()
    key = make_key("acme", name="a")
    now = dt.datetime.now(dt.UTC)
    write_events(
        [
            dataclasses.replace(
                usage_event(key, n, at=now - dt.timedelta(hours=n), model="mock-echo", cost="0"),
                deployment_id=deployment.pk,
                status=502 if n % 4 == 0 else 200,
                latency_ms=100.0 * n,
            )
            for n in range(1, 20)
        ]
    )
    get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    base = gateway_factory().base_url
    SHOTS.mkdir(parents=True, exist_ok=True)

    with signed_in(chromium, base, "/admin/routing/") as page:
        expect(page.locator("figure.console-chart[data-drawn='1']")).to_have_count(2)
        drawn = {c["id"]: c for c in page.evaluate(DRAWN)}
        assert {name: (c["x"], c["xTitle"], c["yTitle"], c["points"]) for name, c in drawn.items()} == {
            "chart-deployment-latency": ("time", "hour (UTC)", "latency (milliseconds)", [48]),
            "chart-deployment-errors": ("time", "hour (UTC)", "error rate (%)", [48]),
        }
        legend = page.evaluate(
            "() => Chart.getChart(document.querySelector('#chart-deployment-latency-figure canvas'))"
            ".data.datasets.map(d => d.label)"
        )
        assert legend == [f"mock-echo → mock/{deployment.upstream_model}"]
        page.screenshot(path=str(SHOTS / "routing-history.png"), full_page=True)
