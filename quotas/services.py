"""Control-plane operations on tenants and keys. Every change bumps the config revision so
that running gateway processes pick it up within a second."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from quotas.keys import DISPLAY_PREFIX_LENGTH, generate_key, hash_key
from quotas.models import ApiKey, RateTier, Tenant
from quotas.revision import bump_revision


class KeyNotFound(Exception):
    pass


@transaction.atomic
def tenant_create(*, name: str, tier_name: str | None = None, display_name: str = "") -> Tenant:
    """Raises ValidationError for a name that is not a slug of at most 64 characters."""
    Tenant._meta.get_field("name").clean(name, None)
    tier = RateTier.objects.get(name=tier_name) if tier_name else None
    tenant = Tenant.objects.create(name=name, display_name=display_name, tier=tier)
    bump_revision()
    return tenant


@transaction.atomic
def key_issue(
    *,
    tenant: Tenant,
    name: str,
    allowed_models: list[str] | None = None,
    expires_at: dt.datetime | None = None,
    tier: RateTier | None = None,
) -> tuple[ApiKey, str]:
    """Create a key and return it with the raw secret, which is never stored or shown again."""
    new = generate_key()
    key = ApiKey.objects.create(
        tenant=tenant,
        name=name,
        prefix=new.prefix,
        key_hash=new.key_hash,
        allowed_models=list(allowed_models or []),
        expires_at=expires_at,
        tier=tier,
    )
    bump_revision()
    return key, new.raw


def key_find(key_or_prefix: str) -> ApiKey:
    """A key by its raw value or its unique display prefix."""
    keys = ApiKey.objects.select_related("tenant")
    exact = keys.filter(key_hash=hash_key(key_or_prefix)).first()
    if exact is not None:
        # A raw key names its key even when another key shares the display prefix.
        return exact
    matches: list[ApiKey] = []
    if len(key_or_prefix) >= DISPLAY_PREFIX_LENGTH:
        matches = list(keys.filter(prefix=key_or_prefix[:DISPLAY_PREFIX_LENGTH])[:2])
    if len(matches) != 1:
        raise KeyNotFound(
            "no key matches" if not matches else "more than one key has that prefix; give the key"
        )
    return matches[0]


@transaction.atomic
def keys_revoke(key_ids: list[int]) -> int:
    """Revoke keys (idempotent); returns how many were newly revoked."""
    now = timezone.now()
    count = ApiKey.objects.filter(pk__in=key_ids, revoked_at__isnull=True).update(
        revoked_at=now, updated_at=now
    )
    if count:
        bump_revision()
    return count
