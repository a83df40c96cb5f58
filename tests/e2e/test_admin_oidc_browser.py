"""Admin sign-in with OpenID Connect in a real headless Chromium, against a Daphne gateway and a
local OIDC provider (discovery, authorization, token, JWKS, userinfo; an RS256 key made by the
test), with local password sign-in turned off: the login page offers only "Sign in with ...";
a tenant admin signed in by the provider sees only their tenant's keys (another tenant's key is a
404), a superuser sees every key; the users, groups and memberships are exactly the claims'.

The database is prepared before the browser starts and checked after it closes (Playwright's
sync API runs an event loop, during which Django refuses ORM calls)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import User

from quotas.models import TenantMembership
from tests.e2e.test_admin_browser import CHROMIUM_ARGS, chromium  # noqa: F401  (a fixture)
from tests.fakes.oidc_provider import FakeOIDCProvider, Identity

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CLIENT_ID = "gateway-admin"
CLIENT_SECRET = "browser-oidc-secret"
SHOTS = Path("/tmp/console-shots")


@pytest.fixture
def idp():
    provider = FakeOIDCProvider(client_id=CLIENT_ID, client_secret=CLIENT_SECRET).start()
    yield provider
    provider.stop()


def test_staff_sign_in_with_oidc_maps_roles_and_tenants(chromium, gateway_factory, make_key, idp):  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    acme, other = make_key("acme", name="acme-key"), make_key("globex", name="globex-key")
    gateway = gateway_factory(
        GATEWAY_OIDC_ISSUER=idp.issuer,
        GATEWAY_OIDC_CLIENT_ID=CLIENT_ID,
        GATEWAY_OIDC_CLIENT_SECRET=CLIENT_SECRET,
        GATEWAY_OIDC_PROVIDER_NAME="Local IdP",
        GATEWAY_OIDC_USERNAME_CLAIM="preferred_username",
        GATEWAY_OIDC_GROUPS_CLAIM="groups",
        GATEWAY_OIDC_SUPERUSER_GROUPS="gw-root",
        GATEWAY_OIDC_PLATFORM_GROUPS="gw-platform",
        GATEWAY_OIDC_TENANTS_CLAIM="tenants",
        GATEWAY_ADMIN_PASSWORD_LOGIN="false",
    )
    base = gateway.base_url
    SHOTS.mkdir(parents=True, exist_ok=True)

    def sign_in(page, who: Identity) -> None:
        idp.identity = who
        page.goto(f"{base}/admin/")
        expect(page).to_have_url(f"{base}/admin/login/?next=/admin/")
        expect(page.locator("input[name=password]")).to_have_count(0)
        page.click("#oidc-sign-in")
        expect(page).to_have_url(f"{base}/admin/")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            # A tenant admin of acme.
            page = browser.new_context().new_page()
            page.set_default_timeout(20_000)
            idp.identity = None
            page.goto(f"{base}/admin/login/")
            expect(page.locator("#oidc-sign-in")).to_have_text("Sign in with Local IdP")
            page.screenshot(path=str(SHOTS / "oidc-login.png"))
            sign_in(
                page,
                Identity(
                    id_token_claims={
                        "sub": "u-1",
                        "preferred_username": "alice",
                        "groups": ["staff-of-acme"],
                    },
                    userinfo_claims={"tenants": ["acme"]},
                ),
            )
            expect(page.locator("#user-tools")).to_contain_text("alice")
            expect(page.locator("#content-main")).not_to_contain_text("Providers")
            page.goto(f"{base}/admin/quotas/apikey/")
            rows = page.locator("#result_list tbody tr")
            expect(rows).to_have_count(1)
            expect(rows).to_contain_text("acme-key")
            assert "globex" not in page.content()
            page.screenshot(path=str(SHOTS / "oidc-tenant-admin-keys.png"), full_page=True)
            response = page.goto(f"{base}/admin/quotas/apikey/{other.key_id}/change/")
            assert response is not None and response.status == 404
            response = page.goto(f"{base}/admin/usage/{other.tenant.pk}/")
            assert response is not None and response.status == 404
            response = page.goto(f"{base}/admin/usage/{acme.tenant.pk}/")
            assert response is not None and response.status == 200

            # A superuser, in a fresh browser context.
            page = browser.new_context().new_page()
            page.set_default_timeout(20_000)
            sign_in(
                page,
                Identity(id_token_claims={"sub": "u-2", "preferred_username": "root", "groups": ["gw-root"]}),
            )
            page.goto(f"{base}/admin/quotas/apikey/")
            expect(page.locator("#result_list tbody tr")).to_have_count(2)
            expect(page.locator("#result_list")).to_contain_text("globex-key")

            # Someone the provider knows but who has no admin role: back to the login page.
            page = browser.new_context().new_page()
            page.set_default_timeout(20_000)
            idp.identity = Identity(
                id_token_claims={"sub": "u-3", "preferred_username": "mallory", "groups": ["everyone"]}
            )
            page.goto(f"{base}/admin/login/")
            page.click("#oidc-sign-in")
            expect(page).to_have_url(f"{base}/admin/login/?sso=failed")
            expect(page.locator("#sso-failed")).to_be_visible()
        finally:
            browser.close()

    assert idp.violations == []
    assert idp.token_requests == 3
    alice, root = User.objects.get(username="alice"), User.objects.get(username="root")
    assert (alice.is_staff, alice.is_superuser, alice.has_usable_password()) == (True, False, False)
    assert list(alice.groups.values_list("name", flat=True)) == ["Tenant admins"]
    assert list(TenantMembership.objects.filter(user=alice).values_list("tenant__name", flat=True)) == [
        "acme"
    ]
    assert (root.is_staff, root.is_superuser, root.groups.count()) == (True, True, 0)
    assert TenantMembership.objects.filter(user=root).count() == 0
    assert not User.objects.filter(username="mallory").exists()
    assert sorted(User.objects.values_list("username", flat=True)) == ["alice", "root"]
    log = gateway.log()
    for token in idp.issued_tokens:
        assert token not in log
    assert CLIENT_SECRET not in log
