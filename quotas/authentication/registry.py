"""The in-process key registry: every key of every active tenant, by hash, with its access
policy and its limits (rate tiers, cost quotas), so that authenticating and admitting a warm
request needs no ORM query.

``load_registry`` builds a new immutable registry from the database; the edge swaps it in when
the control-plane revision changes. A rotated key is registered under both secrets until the
grace period of the old one ends."""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import cast

from quotas.access import AccessPolicy, compile_patterns
from quotas.algorithms import Algorithm
from quotas.authentication.keys import hash_key
from quotas.budget import PeriodName
from quotas.errors import AuthenticationError, UnknownKey
from quotas.models import ApiKey, CostQuota, ModelAccessRule, RateTier, TierModelLimit, TrustedIssuer
from quotas.policy import NO_LIMITS, LimitPolicy, Limits, ModelLimits, QuotaPolicy, TierPolicy


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
    limits: LimitPolicy = NO_LIMITS
    log_content: bool = False  # the tenant's content logging setting (redacted prompt/completion)
    subject: str | None = None  # a token's subject; None for a gateway key (key_id 0 for a token)


@dataclass(frozen=True, slots=True)
class IssuerTrust:
    """A tenant's trust in an identity provider (``TrustedIssuer``), with the tenant's context
    that a verified token's context is made from (no key: ``key_id`` 0)."""

    id: int
    issuer: str
    audience: str
    jwks_url: str
    subject_claim: str
    models_claim: str
    tier_claim: str
    tier: TierPolicy | None
    tenant: KeyContext


@dataclass(frozen=True, slots=True)
class KeyRegistry:
    by_hash: dict[str, KeyContext]
    issuers: dict[str, tuple[IssuerTrust, ...]] = dataclasses.field(default_factory=dict)
    tiers_by_name: dict[str, TierPolicy] = dataclasses.field(default_factory=dict)

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
            raise UnknownKey("Incorrect API key provided.")
        if context.revoked:
            raise AuthenticationError("This API key has been revoked.")
        if context.expires_at is not None and (time.time() if now is None else now) >= context.expires_at:
            raise AuthenticationError("This API key has expired.")
        return context


def _limits(row: RateTier | TierModelLimit) -> Limits:
    return Limits(
        requests_per_minute=row.requests_per_minute,
        tokens_per_minute=row.tokens_per_minute,
        requests_per_day=row.requests_per_day,
        tokens_per_day=row.tokens_per_day,
        max_parallel=row.max_parallel,
    )


def load_tiers() -> dict[int, TierPolicy]:
    lines: dict[int, list[ModelLimits]] = defaultdict(list)
    for line in TierModelLimit.objects.order_by("tier_id", "position", "id"):
        lines[line.tier_id].append(
            ModelLimits(
                pattern=line.pattern, matcher=compile_patterns([line.pattern])[0], limits=_limits(line)
            )
        )
    return {
        tier.pk: TierPolicy(
            name=tier.name,
            algorithm=cast(Algorithm, tier.algorithm),
            limits=_limits(tier),
            models=tuple(lines[tier.pk]),
        )
        for tier in RateTier.objects.all()
    }


def quota_policy(quota: CostQuota) -> QuotaPolicy:
    return QuotaPolicy(
        id=quota.pk,
        owner="tenant" if quota.tenant_id else "key",
        period=cast(PeriodName, quota.period),
        limit_usd=quota.limit_usd,
        hard=quota.hard,
        alert_at=quota.alert_at,
        alert_webhook=quota.alert_webhook,
    )


def load_quotas() -> tuple[dict[int, list[QuotaPolicy]], dict[int, list[QuotaPolicy]]]:
    """Quotas by tenant id and by key id."""
    by_tenant: dict[int, list[QuotaPolicy]] = defaultdict(list)
    by_key: dict[int, list[QuotaPolicy]] = defaultdict(list)
    for quota in CostQuota.objects.order_by("id"):
        policy = quota_policy(quota)
        if quota.tenant_id:
            by_tenant[quota.tenant_id].append(policy)
        elif quota.key_id:
            by_key[quota.key_id].append(policy)
    return by_tenant, by_key


def load_registry() -> KeyRegistry:
    allow: dict[int, list[str]] = {}
    deny: dict[int, list[str]] = {}
    for rule in ModelAccessRule.objects.filter(tenant__is_active=True).only("tenant_id", "pattern", "effect"):
        target = allow if rule.effect == ModelAccessRule.Effect.ALLOW else deny
        target.setdefault(rule.tenant_id, []).append(rule.pattern)
    tiers = load_tiers()
    tenant_quotas, key_quotas = load_quotas()
    by_hash: dict[str, KeyContext] = {}
    keys = ApiKey.objects.filter(tenant__is_active=True).select_related("tenant")
    for key in keys.iterator(chunk_size=2000):
        tenant_tier = tiers.get(key.tenant.tier_id) if key.tenant.tier_id else None
        context = KeyContext(
            key_id=key.pk,
            key_prefix=key.prefix,
            key_name=key.name,
            tenant_id=key.tenant_id,
            tenant_name=key.tenant.name,
            log_content=key.tenant.log_content,
            expires_at=key.expires_at.timestamp() if key.expires_at else None,
            revoked=key.revoked_at is not None,
            policy=AccessPolicy(
                tenant_allow=compile_patterns(allow.get(key.tenant_id, [])),
                tenant_deny=compile_patterns(deny.get(key.tenant_id, [])),
                key_allow=compile_patterns(list(key.allowed_models or [])),
            ),
            limits=LimitPolicy(
                tenant_id=key.tenant_id,
                key_id=key.pk,
                key_tier=tiers.get(key.tier_id) if key.tier_id else None,
                tenant_tier=tenant_tier,
                quotas=(*tenant_quotas.get(key.tenant_id, ()), *key_quotas.get(key.pk, ())),
            ),
        )
        by_hash[key.key_hash] = context
        if key.previous_key_hash and key.previous_expires_at is not None:
            grace_end = key.previous_expires_at.timestamp()
            ends = grace_end if context.expires_at is None else min(grace_end, context.expires_at)
            by_hash[key.previous_key_hash] = dataclasses.replace(context, expires_at=ends)
    issuers = load_issuers(allow=allow, deny=deny, tiers=tiers, tenant_quotas=tenant_quotas)
    return KeyRegistry(
        by_hash=by_hash, issuers=issuers, tiers_by_name={tier.name: tier for tier in tiers.values()}
    )


def load_issuers(
    *,
    allow: dict[int, list[str]],
    deny: dict[int, list[str]],
    tiers: dict[int, TierPolicy],
    tenant_quotas: dict[int, list[QuotaPolicy]],
) -> dict[str, tuple[IssuerTrust, ...]]:
    """Every active tenant's trusted issuers, by issuer."""
    found: dict[str, list[IssuerTrust]] = defaultdict(list)
    rows = TrustedIssuer.objects.filter(tenant__is_active=True).select_related("tenant").order_by("id")
    for row in rows:
        tenant = row.tenant
        context = KeyContext(
            key_id=0,
            key_prefix="jwt",
            key_name="",
            tenant_id=tenant.pk,
            tenant_name=tenant.name,
            log_content=tenant.log_content,
            expires_at=None,
            revoked=False,
            policy=AccessPolicy(
                tenant_allow=compile_patterns(allow.get(tenant.pk, [])),
                tenant_deny=compile_patterns(deny.get(tenant.pk, [])),
                key_allow=(),
            ),
            limits=LimitPolicy(
                tenant_id=tenant.pk,
                key_id=0,
                tenant_tier=tiers.get(tenant.tier_id) if tenant.tier_id else None,
                quotas=tuple(tenant_quotas.get(tenant.pk, ())),
            ),
        )
        found[row.issuer].append(
            IssuerTrust(
                id=row.pk,
                issuer=row.issuer,
                audience=row.audience,
                jwks_url=row.jwks_url,
                subject_claim=row.subject_claim or "sub",
                models_claim=row.models_claim,
                tier_claim=row.tier_claim,
                tier=tiers.get(row.tier_id) if row.tier_id else None,
                tenant=context,
            )
        )
    return {issuer: tuple(trusts) for issuer, trusts in found.items()}
