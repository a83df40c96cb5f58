"""Control-plane operations on tenants and keys. Every change bumps the config revision so
that running gateway processes pick it up within a second."""

from __future__ import annotations

import datetime as dt

from django.db import models, transaction
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from quotas.authentication.keys import DISPLAY_PREFIX_LENGTH, generate_key, hash_key
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
    """A key by its raw value (its current secret, or the one it replaced while that still
    works) or its unique display prefix."""
    keys = ApiKey.objects.select_related("tenant")
    hashed = hash_key(key_or_prefix)
    in_grace = models.Q(previous_key_hash=hashed, previous_expires_at__gt=timezone.now())
    exact = keys.filter(models.Q(key_hash=hashed) | in_grace).first()
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
def key_rotate(key: ApiKey, *, grace: dt.timedelta = dt.timedelta(0)) -> str:
    """Give the key a new secret and return it (shown once). The old secret keeps working for
    ``grace`` (never past the key's own expiry); a zero grace ends it at once. The key keeps its
    id, so its tenant, limits, quotas and usage history carry over. Rotating again during a
    grace period ends the older secret's grace."""
    new = generate_key()
    now = timezone.now()
    if grace > dt.timedelta(0):
        key.previous_key_hash, key.previous_prefix = key.key_hash, key.prefix
        key.previous_expires_at = now + grace
    else:
        key.previous_key_hash, key.previous_prefix, key.previous_expires_at = "", "", None
    key.key_hash, key.prefix, key.rotated_at = new.key_hash, new.prefix, now
    key.save(
        update_fields=[
            "key_hash",
            "prefix",
            "previous_key_hash",
            "previous_prefix",
            "previous_expires_at",
            "rotated_at",
            "updated_at",
        ]
    )
    bump_revision()
    return new.raw


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


def keys_mark_used(last_used: dict[int, dt.datetime]) -> None:
    """Move ``last_used_at`` forward (never back) for many keys in one UPDATE. Called by the
    usage writer once per batch, so requests never write to the key table."""
    if not last_used:
        return
    latest = models.Case(
        *(models.When(pk=key_id, then=models.Value(moment)) for key_id, moment in last_used.items()),
        output_field=models.DateTimeField(),
    )
    ApiKey.objects.filter(pk__in=list(last_used)).update(
        last_used_at=Greatest(Coalesce("last_used_at", latest), latest)
    )
