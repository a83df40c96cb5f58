"""The admin usage page in headless Chromium against a gateway subprocess (no internet needed:
the charts are inline SVG): log in, open the tenant's usage page from the tenant list, see the
charts drawn with bars for the tenant's usage."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model

from accounting.recorder import write_events
from accounting.rollups import usage_rollup
from tests.e2e.test_admin_browser import CHROMIUM_ARGS, PASSWORD, chromium  # noqa: F401 (fixture)
from tests.gateway_site.console.test_usage_api import usage_event

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_usage_page_renders_its_charts_with_data(chromium, gateway_factory, make_key):  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    key = make_key("acme", name="a")
    now = dt.datetime.now(dt.UTC)
    write_events(
        [
            usage_event(key, n, at=now - dt.timedelta(days=n), model=f"m{n % 2}", cost="0.5")
            for n in range(1, 5)
        ]
    )
    usage_rollup(lag=dt.timedelta(0))
    get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    base = gateway_factory().base_url

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(20_000)
            page.goto(f"{base}/admin/login/?next=/admin/quotas/tenant/")
            page.fill("#id_username", "root")
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            page.click("text=charts")
            expect(page).to_have_url(f"{base}/admin/usage/{key.tenant.pk}/")
            expect(page.locator("svg.usage-chart")).to_have_count(3)
            expect(page.locator("svg.usage-chart").nth(0).locator("rect.bar")).to_have_count(4)
            expect(page.locator("svg.usage-chart").nth(1).locator("rect.bar")).to_have_count(2)
            expect(page.locator("#total-requests")).to_have_text("4")
            box = page.locator("svg.usage-chart").nth(0).locator("rect.bar").first.bounding_box()
            assert box is not None and box["height"] > 10
        finally:
            browser.close()
