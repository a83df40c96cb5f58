"""KeyRegistry.authenticate and key_from_headers (pure), and load_registry (database)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from quotas.access import AccessPolicy, compile_patterns, model_allowed
from quotas.authentication.keys import hash_key, key_from_headers
from quotas.authentication.registry import KeyContext, KeyRegistry, load_registry
from quotas.errors import AuthenticationError
from quotas.models import ApiKey, ModelAccessRule
from quotas.services import key_issue, keys_revoke, tenant_create

NO_RULES = AccessPolicy(tenant_allow=(), tenant_deny=(), key_allow=())
GOOD = "sk-gw-good-key-000000000000000000000000000000000000"
REVOKED = "sk-gw-revoked-key-000000000000000000000000000000000"
EXPIRING = "sk-gw-expiring-key-00000000000000000000000000000000"
EXPIRES_AT = 1_900_000_000.0


def context(key_id: int, *, revoked: bool = False, expires_at: float | None = None) -> KeyContext:
    return KeyContext(
        key_id=key_id,
        key_prefix=f"sk-gw-{key_id:06d}",
        key_name=f"key {key_id}",
        tenant_id=7,
        tenant_name="acme",
        expires_at=expires_at,
        revoked=revoked,
        policy=NO_RULES,
    )


@pytest.fixture
def registry() -> KeyRegistry:
    return KeyRegistry(
        by_hash={
            hash_key(GOOD): context(1),
            hash_key(REVOKED): context(2, revoked=True, expires_at=EXPIRES_AT),
            hash_key(EXPIRING): context(3, expires_at=EXPIRES_AT),
        }
    )


def refused(registry: KeyRegistry, raw: str | None, *, now: float | None = None) -> AuthenticationError:
    with pytest.raises(AuthenticationError) as excinfo:
        registry.authenticate(raw, now=now)
    error = excinfo.value
    assert (error.status, error.error_type, error.code, error.param) == (
        401,
        "invalid_request_error",
        "invalid_api_key",
        None,
    )
    assert raw is None or raw not in error.message
    return error


def test_known_key_returns_its_context(registry):
    assert registry.authenticate(GOOD) == context(1)


def test_missing_key(registry):
    assert refused(registry, None).message == (
        "You didn't provide an API key. Send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'."
    )


def test_unknown_key(registry):
    assert refused(registry, GOOD + "x").message == "Incorrect API key provided."


def test_revoked_key(registry):
    # Revocation is reported even when the key has also expired.
    assert refused(registry, REVOKED, now=EXPIRES_AT + 1).message == "This API key has been revoked."


def test_expiry_with_injected_clock(registry):
    assert registry.authenticate(EXPIRING, now=EXPIRES_AT - 0.001) == context(3, expires_at=EXPIRES_AT)
    assert refused(registry, EXPIRING, now=EXPIRES_AT).message == "This API key has expired."
    assert refused(registry, EXPIRING, now=EXPIRES_AT + 3600).message == "This API key has expired."


def test_expiry_uses_an_injected_clock_of_zero():
    registry = KeyRegistry(by_hash={hash_key(EXPIRING): context(3, expires_at=1.0)})

    assert registry.authenticate(EXPIRING, now=0.0).key_id == 3


def test_expiry_without_injected_clock_uses_the_wall_clock():
    past = KeyRegistry(by_hash={hash_key(EXPIRING): context(3, expires_at=1.0)})
    future = KeyRegistry(by_hash={hash_key(EXPIRING): context(3, expires_at=4_000_000_000.0)})

    assert refused(past, EXPIRING).message == "This API key has expired."
    assert future.authenticate(EXPIRING).key_id == 3


# --- key_from_headers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("authorization", "x_api_key", "expected"),
    [
        ("Bearer sk-gw-abc", None, "sk-gw-abc"),
        ("bearer sk-gw-abc", None, "sk-gw-abc"),
        ("BEARER sk-gw-abc", None, "sk-gw-abc"),
        ("  Bearer   sk-gw-abc  ", None, "sk-gw-abc"),
        (None, "sk-gw-abc", "sk-gw-abc"),
        (None, "  sk-gw-abc ", "sk-gw-abc"),
        ("Bearer sk-gw-first", "sk-gw-second", "sk-gw-first"),  # Authorization wins
        ("Bearer ", "sk-gw-second", "sk-gw-second"),  # empty bearer falls back
        ("Bearer", "sk-gw-second", "sk-gw-second"),
        ("Basic dXNlcjpwYXNz", "sk-gw-second", "sk-gw-second"),  # other scheme: ignored
        ("Basic dXNlcjpwYXNz", None, None),
        ("sk-gw-abc", None, None),  # no scheme
        ("Bearer", None, None),
        ("", "", None),
        (None, None, None),
        (None, "   ", None),
        ("Bearer " + "k" * 200, None, "k" * 200),
        ("Bearer " + "k" * 201, None, None),  # too long
        (None, "k" * 201, None),
        ("Bearer sk-gw-ключ", None, None),  # not ASCII
        (None, "sk-gw-ключ", None),
    ],
)
def test_key_from_headers(authorization, x_api_key, expected):
    assert key_from_headers(authorization, x_api_key) == expected


# --- load_registry (database) ---------------------------------------------------------------


@pytest.mark.django_db
def test_load_registry_builds_contexts_from_the_database():
    acme = tenant_create(name="acme")
    ModelAccessRule.objects.create(tenant=acme, pattern="gpt-*", effect="allow")
    ModelAccessRule.objects.create(tenant=acme, pattern="gpt-4", effect="deny")
    expires = timezone.now() + dt.timedelta(days=1)
    live, live_raw = key_issue(tenant=acme, name="live", allowed_models=["*-mini"], expires_at=expires)
    gone, gone_raw = key_issue(tenant=acme, name="gone")
    keys_revoke([gone.pk])

    registry = load_registry()

    assert len(registry.by_hash) == 2
    ctx = registry.authenticate(live_raw)
    assert (ctx.key_id, ctx.key_prefix, ctx.key_name, ctx.tenant_id, ctx.tenant_name, ctx.revoked) == (
        live.pk,
        live_raw[:12],
        "live",
        acme.pk,
        "acme",
        False,
    )
    assert ctx.expires_at == expires.timestamp()
    assert ctx.policy == AccessPolicy(
        tenant_allow=compile_patterns(["gpt-*"]),
        tenant_deny=compile_patterns(["gpt-4"]),
        key_allow=compile_patterns(["*-mini"]),
    )
    assert [m for m in ("gpt-4o-mini", "gpt-4", "gpt-4o", "mock-mini") if model_allowed(ctx.policy, m)] == [
        "gpt-4o-mini"
    ]
    with pytest.raises(AuthenticationError, match=r"^This API key has been revoked\.$"):
        registry.authenticate(gone_raw)


@pytest.mark.django_db
def test_load_registry_leaves_out_keys_of_inactive_tenants():
    acme = tenant_create(name="acme")
    other = tenant_create(name="other")
    _, acme_raw = key_issue(tenant=acme, name="a")
    _, other_raw = key_issue(tenant=other, name="b")
    other.is_active = False
    other.save()

    registry = load_registry()

    assert list(registry.by_hash) == [hash_key(acme_raw)]
    with pytest.raises(AuthenticationError, match=r"^Incorrect API key provided\.$"):
        registry.authenticate(other_raw)
    assert ApiKey.objects.count() == 2
