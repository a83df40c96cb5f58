"""The admin's console pages in headless Chromium against a gateway subprocess (Redis, as in
production): add a key from a tenant's page and reload its page (one key, the secret shown once),
the cost-quota list's exact spent and remaining after a priced request, the fallback form saving
the chosen order, the wide lists fitting 1400 px, and the live tail showing a request made during
the test. Screenshots go to /tmp/console-shots/.

The ORM is used before the browser starts and after it closes (Playwright's sync API runs an
event loop, during which Django refuses ORM calls)."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from django.contrib.auth import get_user_model

from accounting.models import UsageRecord
from providers.models import PublicModel
from quotas.models import ApiKey, CostQuota, Tenant
from quotas.money import usd
from tests.conftest import wait_for
from tests.e2e.test_admin_browser import CHROMIUM_ARGS, PASSWORD, chat, chromium  # noqa: F401 (fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/tmp/console-shots")

CONFIG = """
providers:
  - {name: mock, kind: mock, options: {chunk_delay_ms: 0}}
models:
  - name: mock-echo
    deployments:
      - {provider: mock, model: mock-echo, input_per_million: "1000", output_per_million: "2000"}
  - name: backup-a
    deployments: [{provider: mock, model: mock-echo, free: true}]
  - name: backup-b
    deployments: [{provider: mock, model: mock-echo, free: true}]
tenants:
  - name: acme
    quotas: [{period: month, limit_usd: "10", hard: true}]
"""


@contextlib.contextmanager
def staff_page(executable: str, base: str, then: str) -> Iterator:
    """A 1400 px wide page of headless Chromium, logged in as the superuser, at ``then``."""
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(20_000)
            page.goto(f"{base}/admin/login/?next={then}")
            page.fill("#id_username", "root")
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            yield page
        finally:
            browser.close()


def test_keys_quotas_fallbacks_and_list_widths(chromium, gateway_factory, configure, make_key):  # noqa: F811
    from playwright.sync_api import expect

    configure(CONFIG)
    get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    user_key = make_key("acme", name="app")
    tenant = Tenant.objects.get(name="acme")
    gateway = gateway_factory(GATEWAY_MOCK_CHUNK_DELAY_MS="0")
    base = gateway.base_url
    # One priced request: its cost is settled on the tenant's monthly quota.
    answer = wait_for(lambda: (r := chat(base, user_key.raw)).status_code == 200 and r, timeout=5)
    usage = answer.json()["usage"]
    cost = (Decimal(usage["prompt_tokens"]) * 1000 + Decimal(usage["completion_tokens"]) * 2000) / 1_000_000
    wait_for(lambda: UsageRecord.objects.filter(status=200).exists(), timeout=10)
    assert UsageRecord.objects.get().cost_usd == cost
    spent, remaining = usd(cost), usd(Decimal(10) - cost)  # the one money format

    with staff_page(chromium, base, "/admin/") as page:
        expect(page.locator("#site-name")).to_have_text("LLM Gateway")
        expect(page.locator("#console-links a")).to_have_count(
            5
        )  # dashboard, request log, usage, routing, live tail
        assert page.locator("text=View site").count() == 0
        page.screenshot(path=str(SHOTS / "index.png"), full_page=True)

        # "Add API key" from the tenant's page: the tenant is chosen already.
        page.goto(f"{base}/admin/quotas/tenant/{tenant.pk}/change/")
        page.click("#add-tenant-key")
        expect(page.locator("#id_tenant")).to_have_value(str(tenant.pk))
        page.fill("#id_name", "from the tenant page")
        page.click("input[name=_save]")
        issued = page.locator("#issued-key")
        expect(issued).to_be_visible()
        raw = issued.input_value()
        issued_url = page.url
        assert issued_url.endswith("/issued/")
        page.screenshot(path=str(SHOTS / "key-issued.png"), full_page=True)
        page.reload()
        expect(page.locator("#issued-gone")).to_be_visible()
        expect(page.locator("#issued-key")).to_have_count(0)
        assert raw not in page.content()
        page.screenshot(path=str(SHOTS / "key-issued-reloaded.png"), full_page=True)

        # The cost-quota list: the exact spend of the request above, and what remains.
        page.goto(f"{base}/admin/quotas/costquota/")
        row = page.locator("#result_list tbody tr")
        expect(row).to_have_count(1)
        expect(row.locator("td.field-spent")).to_have_text(spent)
        expect(row.locator("td.field-remaining")).to_have_text(remaining)
        expect(row.locator(".quota-bar")).to_have_attribute("title", "0% used")
        page.screenshot(path=str(SHOTS / "cost-quotas.png"), full_page=True)

        # The key list: limits and spend columns.
        page.goto(f"{base}/admin/quotas/apikey/")
        expect(page.locator("#result_list tbody tr")).to_have_count(2)
        expect(page.locator("#result_list th", has_text="Limits")).to_have_count(1)
        page.screenshot(path=str(SHOTS / "keys.png"), full_page=True)

        # The fallback form: pick two models in order.
        page.goto(f"{base}/admin/providers/publicmodel/?q=mock-echo")
        page.click("#result_list a:text-is('mock-echo')")
        page.select_option("select[name=fallbacks_0]", "backup-b")
        page.select_option("select[name=fallbacks_1]", "backup-a")
        page.screenshot(path=str(SHOTS / "fallbacks-form.png"), full_page=True)
        page.click("input[name=_save]")
        expect(page.locator("ul.messagelist")).to_contain_text("was changed successfully")

        # The wide lists fit 1400 px: nothing to scroll sideways.
        for path, name in (
            ("/admin/accounting/usagerecord/", "usage-records"),
            ("/admin/providers/deployment/", "deployments"),
        ):
            page.goto(f"{base}{path}")
            expect(page.locator("#result_list tbody tr").first).to_be_visible()
            widths = page.evaluate(
                """() => ({page: document.documentElement.scrollWidth,
                table: document.querySelector('#result_list').getBoundingClientRect().right,
                scrolled: document.querySelector('.results').scrollWidth
                  - document.querySelector('.results').clientWidth})"""
            )
            page.screenshot(path=str(SHOTS / f"{name}-1400.png"), full_page=True)
            assert widths["page"] <= 1400, (path, widths)
            assert widths["table"] <= 1400, (path, widths)
            assert widths["scrolled"] <= 0, (path, widths)  # no column hidden in the box

    created = ApiKey.objects.filter(name="from the tenant page")
    assert created.count() == 1
    assert created.get().tenant_id == tenant.pk
    assert created.get().key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert PublicModel.objects.get(name="mock-echo").fallbacks == ["backup-b", "backup-a"]
    assert CostQuota.objects.count() == 1


def test_the_live_tail_shows_a_request_made_during_the_test(chromium, gateway_factory, configure, make_key):  # noqa: F811
    from playwright.sync_api import expect

    configure(CONFIG)
    get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    key = make_key("acme", name="tail")
    gateway = gateway_factory(GATEWAY_MOCK_CHUNK_DELAY_MS="0")
    base = gateway.base_url

    with staff_page(chromium, base, "/admin/live/") as page:
        expect(page.locator("#live-status")).to_have_text("live")
        expect(page.locator("#live-tail tbody tr")).to_have_count(0)

        answer = httpx.post(
            f"{base}/v1/chat/completions",
            headers={"Authorization": f"Bearer {key.raw}"},
            json={"model": "backup-a", "messages": [{"role": "user", "content": "tail me"}]},
            timeout=10,
        )
        assert answer.status_code == 200

        row = page.locator("#live-tail tbody tr")
        expect(row).to_have_count(1)
        expect(row).to_have_attribute("data-request-id", answer.headers["x-request-id"])
        expect(row.locator("td.tail-model")).to_have_text("backup-a")
        expect(row.locator("td.tail-status")).to_have_text("200")
        expect(row.locator("td.tail-tenant")).to_have_text("acme")
        expect(row.locator("td.tail-key")).to_have_text(f"{key.raw[:12]}…")
        expect(row.locator("td.tail-deployment")).to_have_text("mock/mock-echo")
        usage = answer.json()["usage"]
        expect(row.locator("td.tail-tokens")).to_have_text(
            str(usage["prompt_tokens"] + usage["completion_tokens"])
        )
        page.screenshot(path=str(SHOTS / "live-tail.png"), full_page=True)
        assert key.raw not in page.content()
