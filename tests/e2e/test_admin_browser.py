"""The admin in a real headless Chromium, against a gateway subprocess that serves both the admin
and the API: log in, create a tenant and a key through the forms, call the API with the key
read from the page, revoke it with the admin action and see it refused within a second.

Playwright's sync API runs its own event loop, during which Django refuses ORM calls; so the
database is prepared before the browser starts and checked after it closes."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import httpx
import pytest
from django.contrib.auth import get_user_model

from quotas.models import ApiKey, Tenant
from quotas.revision import bump_revision, current_revision
from tests.conftest import mock_echo_yaml, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = Path("/tmp/admin-key.png")
PASSWORD = "correct-horse-battery-staple-42"

MOCK = mock_echo_yaml()


@pytest.fixture
def chromium() -> str:
    """Debian's chromium; missing is a failure under CI and a skip elsewhere."""
    problem = None
    if not (Path(CHROMIUM).exists() and shutil.which(CHROMIUM)):
        problem = f"{CHROMIUM} is not installed (apt-get install -y chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "Playwright for Python is not installed (pip install -e '.[dev]')"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(problem)
        pytest.skip(problem)
    return CHROMIUM


def chat(base_url: str, raw_key: str) -> httpx.Response:
    return httpx.post(
        f"{base_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {raw_key}"},
        json={"model": "mock-echo", "messages": [{"role": "user", "content": "Hello from the browser"}]},
        timeout=10,
    )


def test_issue_use_and_revoke_a_key_through_the_admin(chromium, gateway_factory, configure):
    from playwright.sync_api import expect, sync_playwright

    configure(MOCK)
    get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    gateway = gateway_factory()
    base = gateway.base_url
    bump_revision()  # the counter row exists, as in any configured gateway
    before = current_revision()
    SCREENSHOT.unlink(missing_ok=True)
    static: dict[str, int] = {}

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(20_000)
            page.on(
                "response", lambda r: static.__setitem__(r.url, r.status) if "/static/" in r.url else None
            )

            # Log in through the form.
            page.goto(f"{base}/admin/")
            expect(page).to_have_url(f"{base}/admin/login/?next=/admin/")
            page.fill("#id_username", "root")
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            expect(page).to_have_url(f"{base}/admin/")
            expect(page.locator("#user-tools")).to_contain_text("root")

            # A tenant, then a key for it.
            page.goto(f"{base}/admin/quotas/tenant/add/")
            page.fill("#id_name", "browser-co")
            page.fill("#id_display_name", "Browser Co")
            page.click("input[name=_save]")
            expect(page.locator("ul.messagelist")).to_contain_text("was added successfully")

            page.goto(f"{base}/admin/quotas/apikey/add/")
            page.select_option("#id_tenant", label="browser-co")
            page.fill("#id_name", "browser key")
            page.fill("#id_model_patterns", "mock-*")
            page.click("input[name=_save]")
            issued = page.locator("#issued-key")
            expect(issued).to_be_visible()
            raw = issued.input_value()
            expect(page.locator("#content-main")).to_contain_text("shown only this once")
            header_bg = page.eval_on_selector("#header", "e => getComputedStyle(e).backgroundColor")
            page.screenshot(path=str(SCREENSHOT), full_page=True)

            # The key works against the API of the same gateway.
            response = wait_for(lambda: (r := chat(base, raw)).status_code == 200 and r, timeout=1.0)
            assert response.json()["choices"][0]["message"]["content"] == (
                "This is mock-echo. You said: Hello from the browser"
            )

            # The key is not shown again anywhere.
            page.goto(f"{base}/admin/quotas/apikey/")
            assert raw not in page.content()
            row = page.locator("#result_list tbody tr", has_text="browser key")
            expect(row).to_have_count(1)
            expect(row).to_contain_text("active")

            # Revoke it with the admin action.
            row.locator("input.action-select").check()
            page.select_option("select[name=action]", "revoke_keys")
            page.click("button[name=index]")
            expect(page.locator("ul.messagelist")).to_contain_text("Revoked 1 key(s).")
            expect(page.locator("#result_list tbody tr", has_text="browser key")).to_contain_text("revoked")

            refused = wait_for(lambda: (r := chat(base, raw)).status_code == 401 and r, timeout=1.0)
            assert refused.json()["error"]["message"] == "This API key has been revoked."
        finally:
            browser.close()

    assert SCREENSHOT.stat().st_size > 10_000
    # The admin's stylesheets were served (WhiteNoise) and applied: the header is not transparent.
    css = {url.split("/static/", 1)[1]: status for url, status in static.items() if url.endswith(".css")}
    assert css["admin/css/base.css"] == 200
    assert all(status in (200, 304) for status in css.values()), css
    assert header_bg not in ("rgba(0, 0, 0, 0)", "transparent")
    key = ApiKey.objects.get()
    assert key.tenant == Tenant.objects.get(name="browser-co")
    assert (key.name, key.allowed_models) == ("browser key", ["mock-*"])
    assert (key.key_hash, key.prefix) == (hashlib.sha256(raw.encode()).hexdigest(), raw[:12])
    assert key.revoked_at is not None
    assert current_revision() == before + 3  # tenant added, key added, key revoked
