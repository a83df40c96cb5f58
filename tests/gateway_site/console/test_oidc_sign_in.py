"""Admin sign-in with OpenID Connect, in process (Django's test client) against a local OIDC
provider on 127.0.0.1: group and tenant claims map exactly to staff, superuser, Django groups and
tenant-admin memberships, again on every sign-in; a user mapped to no role, and every id token
that is not exactly right, are refused with nothing created and no token logged; local password
sign-in can be turned off; with OIDC not configured nothing changes.
(The same flow in Chromium against a Daphne gateway: tests/e2e/test_admin_oidc_browser.py.)"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth.models import Group, User

from gateway_site.console import oidc
from quotas.models import ApiKey, Tenant, TenantMembership
from tests.fakes.oidc_provider import FakeOIDCProvider, Identity

pytestmark = pytest.mark.django_db(transaction=True)

CLIENT_ID = "gateway-admin"
CLIENT_SECRET = "oidc-client-secret-do-not-log"
OIDC_BACKEND = "gateway_site.console.oidc.GatewayOIDCBackend"
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


@pytest.fixture
def idp():
    provider = FakeOIDCProvider(client_id=CLIENT_ID, client_secret=CLIENT_SECRET).start()
    yield provider
    provider.stop()
    assert provider.violations == []


@pytest.fixture
def sso(idp, settings):
    oidc._discovery.cache_clear()
    settings.GATEWAY_OIDC_ENABLED = True
    settings.GATEWAY_OIDC_ISSUER = idp.issuer
    settings.GATEWAY_OIDC_PROVIDER_NAME = "Test IdP"
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.GATEWAY_OIDC_USERNAME_CLAIM = "preferred_username"
    settings.GATEWAY_OIDC_GROUPS_CLAIM = "roles"
    settings.GATEWAY_OIDC_STAFF_GROUPS = ["gw-staff"]
    settings.GATEWAY_OIDC_SUPERUSER_GROUPS = ["gw-root"]
    settings.GATEWAY_OIDC_PLATFORM_GROUPS = ["gw-platform"]
    settings.GATEWAY_OIDC_GROUP_MAP = {"gw-auditors": "Auditors"}
    settings.GATEWAY_OIDC_TENANTS_CLAIM = "gateway_tenants"
    settings.GATEWAY_OIDC_TENANT_MATCH = "name"
    settings.AUTHENTICATION_BACKENDS = [MODEL_BACKEND, OIDC_BACKEND]
    yield settings
    oidc._discovery.cache_clear()


@pytest.fixture
def tenants(make_key):
    return {name: make_key(name, name=f"{name}-key") for name in ("acme", "initech", "globex")}


def identity(username: str, roles: list[str], tenants: list[str] | None = None, **extra) -> Identity:
    """Roles in the id token, tenants (when any) only from userinfo, as some providers do."""
    return Identity(
        id_token_claims={"sub": f"sub-{username}", "preferred_username": username, "roles": roles, **extra},
        userinfo_claims={"gateway_tenants": tenants} if tenants is not None else {},
    )


def sign_in(client, idp, who: Identity | None = None):
    """The whole code flow: our sign-in view, the provider's authorization endpoint, our callback.
    Returns the callback's response."""
    if who is not None:
        idp.identity = who
    start = client.get("/oidc/authenticate/", {"next": "/admin/quotas/apikey/"})
    assert start.status_code == 302
    assert start["Location"].startswith(f"{idp.base_url}/authorize?")
    back = httpx.get(start["Location"], follow_redirects=False, timeout=10)
    assert back.status_code == 302, back.text
    location = urlsplit(back.headers["location"])
    assert location.path == "/oidc/callback/"
    return client.get(location.path, {k: v[0] for k, v in parse_qs(location.query).items()})


def user_roles(username: str) -> tuple[bool, bool, list[str], list[str], bool]:
    user = User.objects.get(username=username)
    return (
        user.is_staff,
        user.is_superuser,
        sorted(user.groups.values_list("name", flat=True)),
        sorted(TenantMembership.objects.filter(user=user).values_list("tenant__name", flat=True)),
        user.has_usable_password(),
    )


def test_a_superuser_role_signs_in_as_superuser(sso, idp, client):
    response = sign_in(client, idp, identity("root", ["gw-root"], email="root@example.com"))
    assert (response.status_code, response["Location"]) == (302, "/admin/quotas/apikey/")
    assert user_roles("root") == (True, True, [], [], False)
    assert User.objects.get(username="root").email == "root@example.com"
    assert client.get("/admin/").status_code == 200
    assert idp.token_requests == 1


def test_a_platform_role_sees_every_tenant(sso, idp, client, tenants):
    assert sign_in(client, idp, identity("ops", ["gw-platform", "unrelated"])).status_code == 302
    assert user_roles("ops") == (True, False, ["Platform staff"], [], False)
    listed = client.get("/admin/quotas/apikey/").context["cl"].result_list
    assert sorted(k.name for k in listed) == ["acme-key", "globex-key", "initech-key"]


def test_a_tenants_claim_makes_a_tenant_admin_of_exactly_those_tenants(sso, idp, client, tenants):
    response = sign_in(client, idp, identity("alice", [], ["acme", "initech", "no-such-tenant"]))
    assert response.status_code == 302
    assert user_roles("alice") == (True, False, ["Tenant admins"], ["acme", "initech"], False)
    listed = client.get("/admin/quotas/apikey/").context["cl"].result_list
    assert sorted(k.name for k in listed) == ["acme-key", "initech-key"]
    assert client.get(f"/admin/quotas/apikey/{tenants['globex'].key_id}/change/").status_code == 404
    assert client.get("/admin/providers/provider/").status_code == 403


def test_tenants_by_id_when_configured(sso, idp, client, tenants):
    sso.GATEWAY_OIDC_TENANT_MATCH = "id"
    acme = tenants["acme"].tenant
    assert sign_in(client, idp, identity("alice", [], [str(acme.pk), "acme"])).status_code == 302
    assert user_roles("alice")[3] == ["acme"]


def test_every_sign_in_maps_the_roles_again(sso, idp, client, tenants):
    sign_in(client, idp, identity("bob", ["gw-platform", "gw-auditors"], ["acme"]))
    assert user_roles("bob") == (
        True,
        False,
        ["Auditors", "Platform staff", "Tenant admins"],
        ["acme"],
        False,
    )
    bob = User.objects.get(username="bob")
    bob.groups.add(Group.objects.create(name="Hand-made"))  # not the mapping's: kept
    client.logout()
    sign_in(client, idp, identity("bob", ["gw-staff"], ["initech"]))
    assert user_roles("bob") == (True, False, ["Hand-made", "Tenant admins"], ["initech"], False)
    client.logout()
    sign_in(client, idp, identity("bob", ["gw-staff"]))
    assert user_roles("bob") == (True, False, ["Hand-made"], [], False)
    assert User.objects.filter(username="bob").count() == 1


def test_a_user_with_no_admin_role_is_refused_and_not_created(sso, idp, client):
    response = sign_in(client, idp, identity("mallory", ["everyone"], []))
    assert (response.status_code, response["Location"]) == (302, "/admin/login/?sso=failed")
    assert User.objects.count() == 0
    assert client.get("/admin/").status_code == 302  # still signed out
    page = client.get("/admin/login/?sso=failed").content.decode()
    assert 'id="sso-failed"' in page


def test_a_deactivated_user_stays_out(sso, idp, client):
    sign_in(client, idp, identity("carol", ["gw-root"]))
    User.objects.filter(username="carol").update(is_active=False)
    client.logout()
    response = sign_in(client, idp, identity("carol", ["gw-root"]))
    assert response["Location"] == "/admin/login/?sso=failed"
    assert client.get("/admin/").status_code == 302


@pytest.mark.parametrize(
    "tamper",
    ["audience", "issuer", "expired", "signature", "subject-mismatch"],
)
def test_id_tokens_not_exactly_right_are_refused(sso, idp, client, caplog, tamper):
    now = int(time.time())
    who = identity("eve", ["gw-root"])
    if tamper == "audience":
        idp.id_token_overrides = {"aud": "another-client"}
    elif tamper == "issuer":
        idp.id_token_overrides = {"iss": "http://127.0.0.1:1"}
    elif tamper == "expired":
        idp.id_token_overrides = {"exp": now - 3600, "iat": now - 7200}
    elif tamper == "signature":
        idp.signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        who.userinfo_claims = {"sub": "someone-else"}
    with caplog.at_level(logging.DEBUG):
        response = sign_in(client, idp, who)
    assert (response.status_code, response["Location"]) == (302, "/admin/login/?sso=failed")
    assert User.objects.count() == 0
    assert len(idp.issued_tokens) == 2
    for secret in (*idp.issued_tokens, CLIENT_SECRET):
        assert secret not in caplog.text


def test_password_login_can_be_turned_off(sso, idp, client):
    User.objects.create_superuser("local", "local@example.com", "pw-local-1")
    sso.GATEWAY_ADMIN_PASSWORD_LOGIN = False
    sso.AUTHENTICATION_BACKENDS = [OIDC_BACKEND]
    page = client.get("/admin/login/")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="oidc-sign-in"' in html and "Sign in with Test IdP" in html
    assert 'name="password"' not in html
    refused = client.post("/admin/login/", {"username": "local", "password": "pw-local-1"})
    assert refused.status_code == 403
    assert refused.content == b"Password sign-in is turned off: sign in with single sign-on."
    assert client.get("/admin/").status_code == 302
    # Even past the page, no backend takes a password.
    assert not client.login(username="local", password="pw-local-1")
    # Single sign-on still works.
    assert sign_in(client, idp, identity("root", ["gw-root"])).status_code == 302
    assert client.get("/admin/").status_code == 200


def test_with_both_on_the_page_offers_both(sso, idp, client):
    User.objects.create_superuser("local", "local@example.com", "pw-local-1")
    html = client.get("/admin/login/").content.decode()
    assert 'id="oidc-sign-in"' in html and 'name="password"' in html
    response = client.post("/admin/login/?next=/admin/", {"username": "local", "password": "pw-local-1"})
    assert (response.status_code, response["Location"]) == (302, "/admin/")


def test_an_unreachable_provider_is_a_503_on_sign_in(sso, client):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sso.GATEWAY_OIDC_ISSUER = f"http://127.0.0.1:{port}"
    response = client.get("/oidc/authenticate/")
    assert response.status_code == 503
    assert response.content == b"Single sign-on is unavailable: the identity provider cannot be reached."


def test_without_oidc_nothing_changes(client, settings):
    assert settings.GATEWAY_OIDC_ENABLED is False
    assert settings.AUTHENTICATION_BACKENDS == [MODEL_BACKEND]
    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/", {"code": "x", "state": "y"}).status_code == 404
    html = client.get("/admin/login/").content.decode()
    assert 'id="oidc-sign-in"' not in html
    assert 'name="password"' in html
    User.objects.create_superuser("local", "local@example.com", "pw-local-1")
    assert (
        client.post("/admin/login/?next=/admin/", {"username": "local", "password": "pw-local-1"}).status_code
        == 302
    )
    assert client.get("/admin/").status_code == 200
    assert Tenant.objects.count() == 0 and ApiKey.objects.count() == 0


def settings_in_subprocess(env: dict[str, str], tmp_path, code: str = "") -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_OIDC_", "GATEWAY_ADMIN_"))}
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); from django.conf import settings; {code}"],
        env={
            **base,
            "DJANGO_SETTINGS_MODULE": "gateway_site.settings",
            "GATEWAY_DATA_DIR": str(tmp_path),
            **env,
        },
        cwd=Path(__file__).resolve().parents[3],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"GATEWAY_ADMIN_PASSWORD_LOGIN": "false"},
            "GATEWAY_ADMIN_PASSWORD_LOGIN=false needs OIDC sign-in (GATEWAY_OIDC_CLIENT_ID)",
        ),
        (
            {
                "GATEWAY_OIDC_CLIENT_ID": "c",
                "GATEWAY_OIDC_AUTHORIZATION_ENDPOINT": "https://idp.example/auth",
                "GATEWAY_OIDC_TOKEN_ENDPOINT": "https://idp.example/token",
            },
            "GATEWAY_OIDC_JWKS_ENDPOINT (or GATEWAY_OIDC_ISSUER) is needed to check id tokens",
        ),
        (
            {"GATEWAY_OIDC_GROUP_MAP": "admins=Admins,oops"},
            "GATEWAY_OIDC_GROUP_MAP: expected idp-group=Django group, got 'oops'",
        ),
        (
            {"GATEWAY_OIDC_SIGN_ALGORITHM": "HS256"},
            "GATEWAY_OIDC_SIGN_ALGORITHM must be one of rs256, es256, ps256, got 'HS256'",
        ),
    ],
)
def test_bad_sign_in_settings_stop_the_process_at_start(env, message, tmp_path):
    result = settings_in_subprocess(env, tmp_path)
    assert result.returncode == 1
    assert f"django.core.exceptions.ImproperlyConfigured: {message}" in result.stderr


def test_sign_in_settings_from_the_environment(tmp_path):
    result = settings_in_subprocess(
        {
            "GATEWAY_OIDC_ISSUER": "https://idp.example/realms/acme/",
            "GATEWAY_OIDC_CLIENT_ID": "gateway",
            "GATEWAY_OIDC_GROUP_MAP": "auditors = Auditors, ops=Operations",
            "GATEWAY_OIDC_SIGN_ALGORITHM": "es256",
            "GATEWAY_ADMIN_PASSWORD_LOGIN": "false",
        },
        tmp_path,
        "print(settings.AUTHENTICATION_BACKENDS, settings.GATEWAY_OIDC_ENABLED, settings.GATEWAY_OIDC_ISSUER,"
        " settings.GATEWAY_OIDC_GROUP_MAP, settings.OIDC_RP_SIGN_ALGO)",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"['{OIDC_BACKEND}'] True https://idp.example/realms/acme "
        "{'auditors': 'Auditors', 'ops': 'Operations'} ES256"
    )


def test_an_issuer_spelled_with_a_trailing_slash(sso, idp, client):
    idp.trailing_slash = True
    sso.GATEWAY_OIDC_ISSUER = idp.base_url  # configured without it (settings strip it)
    assert sign_in(client, idp, identity("root", ["gw-root"])).status_code == 302
    assert jwt.decode(idp.issued_tokens[0], options={"verify_signature": False})["iss"] == idp.base_url + "/"
    assert user_roles("root") == (True, True, [], [], False)
