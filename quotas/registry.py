"""The in-process key registry: every key of every active tenant, by hash, so that
authenticating a warm request is one dictionary lookup and no ORM query.

``load_registry`` builds a new immutable registry from the database; the edge swaps it in when
the control-plane revision changes."""

from __future__ import annotations

import time
from dataclasses import dataclass

from quotas.access import AccessPolicy, compile_patterns
from quotas.errors import AuthenticationError
from quotas.keys import hash_key
from quotas.models import ApiKey, ModelAccessRule


@dataclass(frozen=True, slots=True)
class KeyContext:
    key_id: int
    key_prefix: str
    key_name: str
    tenant_id: int
    tenant_name: str
    expires_at: float | None
    revoked: bool
    policy: AccessPolicy


@dataclass(frozen=True, slots=True)
class KeyRegistry:
    by_hash: dict[str, KeyContext]

    def authenticate(self, raw_key: str | None, *, now: float | None = None) -> KeyContext:
        """The key's context, or AuthenticationError for a missing, unknown, revoked or
        expired key. The message never echoes the presented key."""
        if raw_key is None:
            raise AuthenticationError(
                "You didn't provide an API key. Send it as 'Authorization: Bearer <key>' "
                "or 'X-API-Key: <key>'."
            )
        context = self.by_hash.get(hash_key(raw_key))
        if context is None:
            raise AuthenticationError("Incorrect API key provided.")
        if context.revoked:
            raise AuthenticationError("This API key has been revoked.")
        if context.expires_at is not None and (time.time() if now is None else now) >= context.expires_at:
            raise AuthenticationError("This API key has expired.")
        return context


def load_registry() -> KeyRegistry:
    allow: dict[int, list[str]] = {}
    deny: dict[int, list[str]] = {}
    for rule in ModelAccessRule.objects.filter(tenant__is_active=True).only("tenant_id", "pattern", "effect"):
        target = allow if rule.effect == ModelAccessRule.Effect.ALLOW else deny
        target.setdefault(rule.tenant_id, []).append(rule.pattern)
    by_hash: dict[str, KeyContext] = {}
    keys = ApiKey.objects.filter(tenant__is_active=True).select_related("tenant")
    for key in keys.iterator(chunk_size=2000):
        by_hash[key.key_hash] = KeyContext(
            key_id=key.pk,
            key_prefix=key.prefix,
            key_name=key.name,
            tenant_id=key.tenant_id,
            tenant_name=key.tenant.name,
            expires_at=key.expires_at.timestamp() if key.expires_at else None,
            revoked=key.revoked_at is not None,
            policy=AccessPolicy(
                tenant_allow=compile_patterns(allow.get(key.tenant_id, [])),
                tenant_deny=compile_patterns(deny.get(key.tenant_id, [])),
                key_allow=compile_patterns(list(key.allowed_models or [])),
            ),
        )
    return KeyRegistry(by_hash=by_hash)
