"""Staff sign-in to the admin with OpenID Connect (mozilla-django-oidc), on when
``GATEWAY_OIDC_CLIENT_ID`` and an issuer (or its endpoints) are set (docs/security.md).

* Endpoints not set explicitly come from the issuer's discovery document, fetched on the first
  sign-in and kept for the life of the process (never on the /v1 path, nor on a permission check).
* The id token is checked against the issuer's JWKS: signature, the one configured algorithm,
  ``iss``, ``aud`` (our client id), ``exp``, the nonce; PKCE protects the code.
* Claims (the id token's, completed by the userinfo endpoint's when there is one) are mapped
  on every sign-in: group claims to staff, superuser, "Platform staff" and other Django groups,
  a tenants claim to tenant-admin memberships. The identity provider is the source of truth for
  what it maps: a group or tenant no longer claimed is taken away. A user it maps to no role is
  refused, and nothing is created for them.
* Nothing of a token or a client secret is ever logged or put in a page."""

from __future__ import annotations

import functools
import logging
from typing import Any

import jwt
import requests
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import SuspiciousOperation
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from quotas.models import Tenant, TenantMembership
from quotas.tenancy import PLATFORM_STAFF_GROUP, TENANT_ADMINS_GROUP

logger = logging.getLogger(__name__)

LEEWAY_SECONDS = 30
_ENDPOINTS = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
}


class DiscoveryError(Exception):
    pass


@functools.cache
def _discovery(issuer: str) -> dict[str, Any]:
    """The issuer's discovery document (cached per process once fetched; a failure is not)."""
    url = f"{issuer}/.well-known/openid-configuration"
    try:
        response = requests.get(url, timeout=settings.OIDC_TIMEOUT)
        response.raise_for_status()
        document: dict[str, Any] = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise DiscoveryError(f"the OIDC discovery document of {issuer} could not be read: {exc}") from None
    if document.get("issuer", "").rstrip("/") != issuer:
        raise DiscoveryError(f"the discovery document at {url} names another issuer")
    return document


def oidc_setting(attr: str, *default: Any) -> Any:
    """A mozilla-django-oidc setting; an endpoint left empty is read from discovery."""
    value = getattr(settings, attr, *default)
    if attr in _ENDPOINTS and not value and settings.GATEWAY_OIDC_ISSUER:
        value = _discovery(settings.GATEWAY_OIDC_ISSUER).get(_ENDPOINTS[attr], "") or ""
    return value


def _claimed_list(claims: dict[str, Any], name: str) -> set[str]:
    value = claims.get(name) if name else None
    if isinstance(value, str):
        return {value}
    if isinstance(value, list | tuple):
        return {str(item) for item in value}
    return set()


class Roles:
    """What a set of claims makes a user: flags, Django groups (of those the mapping manages)
    and tenants (ids)."""

    def __init__(self, claims: dict[str, Any]) -> None:
        groups = _claimed_list(claims, settings.GATEWAY_OIDC_GROUPS_CLAIM)
        self.superuser = bool(groups & set(settings.GATEWAY_OIDC_SUPERUSER_GROUPS))
        self.platform = bool(groups & set(settings.GATEWAY_OIDC_PLATFORM_GROUPS))
        mapped = {settings.GATEWAY_OIDC_GROUP_MAP[g] for g in groups if g in settings.GATEWAY_OIDC_GROUP_MAP}
        self.tenant_ids = self._tenants(_claimed_list(claims, settings.GATEWAY_OIDC_TENANTS_CLAIM))
        self.groups = mapped | ({PLATFORM_STAFF_GROUP} if self.platform else set())
        if self.tenant_ids:
            self.groups.add(TENANT_ADMINS_GROUP)
        self.staff = (
            self.superuser or bool(self.groups) or bool(groups & set(settings.GATEWAY_OIDC_STAFF_GROUPS))
        )

    @staticmethod
    def _tenants(claimed: set[str]) -> set[int]:
        if not claimed:
            return set()
        if settings.GATEWAY_OIDC_TENANT_MATCH == "id":
            ids = [int(value) for value in claimed if value.isdigit()]
            return set(Tenant.objects.filter(pk__in=ids).values_list("pk", flat=True))
        return set(Tenant.objects.filter(name__in=sorted(claimed)).values_list("pk", flat=True))

    @staticmethod
    def managed_groups() -> set[str]:
        return {PLATFORM_STAFF_GROUP, TENANT_ADMINS_GROUP, *settings.GATEWAY_OIDC_GROUP_MAP.values()}


class GatewayOIDCBackend(OIDCAuthenticationBackend):  # type: ignore[misc]
    """The code flow of mozilla-django-oidc, with endpoints from discovery, a stricter id-token
    check and the claims-to-roles mapping. Constructed for every permission check too, so its
    constructor reads no endpoint (they are properties, resolved during a sign-in only)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = settings.OIDC_RP_CLIENT_SECRET
        self.OIDC_RP_SIGN_ALGO = settings.OIDC_RP_SIGN_ALGO
        self.OIDC_RP_IDP_SIGN_KEY = None
        self.UserModel = get_user_model()

    @staticmethod
    def get_settings(attr: str, *args: Any) -> Any:
        return oidc_setting(attr, *args)

    @property
    def OIDC_OP_TOKEN_ENDPOINT(self) -> str:  # the library's attribute names
        return str(oidc_setting("OIDC_OP_TOKEN_ENDPOINT"))

    @property
    def OIDC_OP_USER_ENDPOINT(self) -> str:
        return str(oidc_setting("OIDC_OP_USER_ENDPOINT"))

    @property
    def OIDC_OP_JWKS_ENDPOINT(self) -> str:
        return str(oidc_setting("OIDC_OP_JWKS_ENDPOINT"))

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> Any:
        try:
            return super().authenticate(request, **kwargs)
        except (requests.RequestException, DiscoveryError, SuspiciousOperation, jwt.PyJWTError) as exc:
            # The reason class only: a token response may carry the tokens themselves.
            logger.warning("OIDC sign-in refused: %s", type(exc).__name__)
            return None

    def _verify_jws(self, payload: Any, key: Any) -> dict[str, Any]:
        """Signature with the configured algorithm only, and the standard claims: our client id
        in ``aud``, the issuer (when known) in ``iss``, ``exp`` and ``iat`` with a small leeway."""
        try:
            return jwt.decode(
                payload,
                key,
                algorithms=[self.OIDC_RP_SIGN_ALGO],
                audience=self.OIDC_RP_CLIENT_ID,
                issuer=self._issuer(),
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "sub", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise SuspiciousOperation(f"id token refused ({type(exc).__name__})") from None

    @staticmethod
    def _issuer() -> str | None:
        """The issuer exactly as the provider spells it (a trailing slash or not) in its
        discovery document, which names the configured one."""
        if not settings.GATEWAY_OIDC_ISSUER:
            return None
        return str(_discovery(settings.GATEWAY_OIDC_ISSUER)["issuer"])

    def get_userinfo(self, access_token: str, id_token: str, payload: dict[str, Any]) -> dict[str, Any]:
        claims = dict(payload)
        if self.OIDC_OP_USER_ENDPOINT:
            userinfo = super().get_userinfo(access_token, id_token, payload)
            if userinfo.get("sub") != payload.get("sub"):
                raise SuspiciousOperation("the userinfo subject is not the id token's")
            claims.update(userinfo)
        return claims

    def _username(self, claims: dict[str, Any]) -> str:
        return str(claims.get(settings.GATEWAY_OIDC_USERNAME_CLAIM) or "")[:150]

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        if not self._username(claims):
            logger.warning("OIDC sign-in refused: no %s claim", settings.GATEWAY_OIDC_USERNAME_CLAIM)
            return False
        if not Roles(claims).staff:
            logger.warning("OIDC sign-in refused: the claims map to no admin role")
            return False
        return True

    def filter_users_by_claims(self, claims: dict[str, Any]) -> Any:
        return self.UserModel.objects.filter(username=self._username(claims))

    def create_user(self, claims: dict[str, Any]) -> Any:
        user = self.UserModel(username=self._username(claims))
        user.set_unusable_password()
        return self.update_user(user, claims)

    @transaction.atomic
    def update_user(self, user: Any, claims: dict[str, Any]) -> Any:
        roles = Roles(claims)
        user.email = str(claims.get("email") or user.email or "")[:254]
        user.first_name = str(claims.get("given_name") or user.first_name or "")[:150]
        user.last_name = str(claims.get("family_name") or user.last_name or "")[:150]
        # is_active stays the platform's: a user deactivated in the admin stays out.
        user.is_staff, user.is_superuser = roles.staff, roles.superuser
        user.save()
        managed = Roles.managed_groups()
        for name in roles.groups:
            Group.objects.get_or_create(name=name)
        user.groups.remove(*Group.objects.filter(name__in=managed - roles.groups))
        user.groups.add(*Group.objects.filter(name__in=roles.groups))
        TenantMembership.objects.filter(user=user).exclude(tenant_id__in=roles.tenant_ids).delete()
        have = set(TenantMembership.objects.filter(user=user).values_list("tenant_id", flat=True))
        TenantMembership.objects.bulk_create(
            [TenantMembership(user=user, tenant_id=pk) for pk in sorted(roles.tenant_ids - have)]
        )
        return user


class SignInView(OIDCAuthenticationRequestView):  # type: ignore[misc]
    """Redirects to the identity provider (its authorization endpoint, from discovery when
    not set)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Not the library's constructor: discovery belongs in the request, where it can fail cleanly.
        super(OIDCAuthenticationRequestView, self).__init__(*args, **kwargs)
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID

    @staticmethod
    def get_settings(attr: str, *args: Any) -> Any:
        return oidc_setting(attr, *args)

    def get(self, request: HttpRequest) -> HttpResponse:
        try:
            self.OIDC_OP_AUTH_ENDPOINT = oidc_setting("OIDC_OP_AUTHORIZATION_ENDPOINT")
        except DiscoveryError as exc:
            logger.warning("OIDC sign-in unavailable: %s", exc)
            return HttpResponse(
                "Single sign-on is unavailable: the identity provider cannot be reached.",
                status=503,
                content_type="text/plain",
            )
        return super().get(request)  # type: ignore[no-any-return]


class CallbackView(OIDCAuthenticationCallbackView):  # type: ignore[misc]
    @staticmethod
    def get_settings(attr: str, *args: Any) -> Any:
        return oidc_setting(attr, *args)


def _when_enabled(view: Any) -> Any:
    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.GATEWAY_OIDC_ENABLED:
            raise Http404("Single sign-on is not configured.")
        return view(request, *args, **kwargs)  # type: ignore[no-any-return]

    return wrapped


sign_in = _when_enabled(SignInView.as_view())
callback = _when_enabled(CallbackView.as_view())


def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin's login page: with the "Sign in with ..." button when OIDC is on; without the
    password form, and refusing its POST, when ``GATEWAY_ADMIN_PASSWORD_LOGIN`` is false."""
    if not settings.GATEWAY_ADMIN_PASSWORD_LOGIN and request.method == "POST":
        return HttpResponseForbidden(
            "Password sign-in is turned off: sign in with single sign-on.", content_type="text/plain"
        )
    context = {
        "oidc_enabled": settings.GATEWAY_OIDC_ENABLED,
        "oidc_provider_name": settings.GATEWAY_OIDC_PROVIDER_NAME,
        "hide_password_form": not settings.GATEWAY_ADMIN_PASSWORD_LOGIN,
        "sso_failed": request.GET.get("sso") == "failed",
    }
    return admin.site.login(request, extra_context=context)
