"""Control-plane records for who may call what, and how much."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from quotas.money import usd


class ConfigRevision(models.Model):
    """A single counter bumped by every control-plane change (keys, tenants, rules, providers,
    models). Gateway processes poll it to learn that their in-process snapshot is stale."""

    revision = models.BigIntegerField(default=0)
    changed_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "configuration revision"

    def __str__(self) -> str:
        return f"revision {self.revision}"


class RateTier(models.Model):
    class Algorithm(models.TextChoices):
        FIXED_WINDOW = "fixed_window", "Fixed window"
        SLIDING_WINDOW = "sliding_window", "Sliding window"
        TOKEN_BUCKET = "token_bucket", "Token bucket"
        LEAKY_BUCKET = "leaky_bucket", "Leaky bucket"

    name = models.SlugField(max_length=64, unique=True)
    algorithm = models.CharField(max_length=20, choices=Algorithm.choices, default=Algorithm.SLIDING_WINDOW)
    requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    tokens_per_minute = models.PositiveIntegerField(null=True, blank=True)
    requests_per_day = models.PositiveIntegerField(null=True, blank=True)
    tokens_per_day = models.PositiveBigIntegerField(null=True, blank=True)
    max_parallel = models.PositiveIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TierModelLimit(models.Model):
    """A per-model line of a tier: extra limits for each model whose public name matches
    ``pattern`` (each matching model is counted separately). The first matching line applies."""

    tier = models.ForeignKey(RateTier, on_delete=models.CASCADE, related_name="model_limits")
    position = models.PositiveSmallIntegerField(default=0, help_text="Lines are tried in this order.")
    pattern = models.CharField(max_length=200, help_text="Glob over public model names, e.g. gpt-4o*.")
    requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    tokens_per_minute = models.PositiveIntegerField(null=True, blank=True)
    requests_per_day = models.PositiveIntegerField(null=True, blank=True)
    tokens_per_day = models.PositiveBigIntegerField(null=True, blank=True)
    max_parallel = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["tier", "position", "id"]
        verbose_name = "per-model limit"
        constraints = [models.UniqueConstraint(fields=["tier", "pattern"], name="uniq_tier_model_pattern")]

    def __str__(self) -> str:
        return f"{self.tier.name}: {self.pattern}"


class Tenant(models.Model):
    name = models.SlugField(max_length=64, unique=True)
    display_name = models.CharField(max_length=200, blank=True)
    tier = models.ForeignKey(RateTier, null=True, blank=True, on_delete=models.SET_NULL)
    is_active = models.BooleanField(default=True)
    log_content = models.BooleanField(
        default=False,
        help_text="Add the prompt and completion text, PII-redacted, to this tenant's access log lines.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ApiKey(models.Model):
    """A gateway key. Only the SHA-256 of the raw key and a short display prefix are stored;
    the raw key is shown once, when it is issued."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="keys")
    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=16, db_index=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    allowed_models = models.JSONField(
        default=list,
        blank=True,
        help_text="Glob patterns (e.g. gpt-4o*). Empty: every model the tenant may use.",
    )
    tier = models.ForeignKey(
        RateTier,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        help_text="Overrides the tenant's tier for this key.",
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Rotation: the replaced secret keeps working until ``previous_expires_at`` (grace period).
    previous_key_hash = models.CharField(max_length=64, blank=True, editable=False, db_index=True)
    previous_prefix = models.CharField(max_length=16, blank=True, editable=False)
    previous_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Written in batches by the usage writer, never by the request path.
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class ModelAccessRule(models.Model):
    """Tenant-wide allow or deny of public model names by glob pattern. Deny wins; when a
    tenant has any allow rule, a model must match one of them."""

    class Effect(models.TextChoices):
        ALLOW = "allow", "Allow"
        DENY = "deny", "Deny"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="access_rules")
    pattern = models.CharField(max_length=200, help_text="Glob over public model names.")
    effect = models.CharField(max_length=5, choices=Effect.choices, default=Effect.ALLOW)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant__name", "effect", "pattern"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "pattern", "effect"], name="uniq_access_rule")
        ]

    def __str__(self) -> str:
        return f"{self.effect} {self.pattern}"


class CostQuota(models.Model):
    """A spend limit in dollars per period for a tenant or one key (exactly one is set)."""

    class Period(models.TextChoices):
        DAY = "day", "Day"
        WEEK = "week", "Week"
        MONTH = "month", "Month"
        LIFETIME = "lifetime", "Lifetime"

    tenant = models.ForeignKey(Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="quotas")
    key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.CASCADE, related_name="quotas")
    period = models.CharField(max_length=10, choices=Period.choices, default=Period.MONTH)
    limit_usd = models.DecimalField(
        max_digits=14, decimal_places=4, validators=[MinValueValidator(Decimal("0"))]
    )
    hard = models.BooleanField(default=True, help_text="Refuse requests past the limit.")
    alert_at = models.DecimalField(
        max_digits=4,
        decimal_places=3,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1"))],
        help_text="Fraction of the limit (e.g. 0.8) at which the alert fires once per period.",
    )
    alert_webhook = models.URLField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "cost quota"
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(tenant__isnull=False, key__isnull=True)
                    | models.Q(tenant__isnull=True, key__isnull=False)
                ),
                name="quota_owner_exactly_one",
            )
        ]

    def __str__(self) -> str:
        owner = self.tenant or self.key
        return f"{owner}: {usd(self.limit_usd)}/{self.period}"


class QuotaAlert(models.Model):
    """A cost-quota alert that fired: at most one per quota and period (the unique constraint
    makes a second delivery impossible even if two processes race)."""

    quota = models.ForeignKey(CostQuota, on_delete=models.CASCADE, related_name="alerts")
    period_key = models.CharField(max_length=32, help_text="The period the alert belongs to.")
    period_start = models.DateTimeField(null=True, blank=True, help_text="Empty for a lifetime quota.")
    spent_usd = models.DecimalField(max_digits=20, decimal_places=6)
    limit_usd = models.DecimalField(max_digits=14, decimal_places=4)
    threshold = models.DecimalField(max_digits=4, decimal_places=3)
    webhook = models.URLField(blank=True)
    fired_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-fired_at"]
        verbose_name = "quota alert"
        constraints = [
            models.UniqueConstraint(fields=["quota", "period_key"], name="uniq_quota_alert_per_period")
        ]

    def __str__(self) -> str:
        return f"{self.quota} at {self.threshold} ({self.period_key})"


class TrustedIssuer(models.Model):
    """An identity provider whose signed JWTs (``Authorization: Bearer <JWT>``) a tenant accepts
    instead of a gateway key. The token's subject is attributed on the usage records; claims may
    narrow the models or pick a rate tier (docs/security.md)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="trusted_issuers")
    issuer = models.URLField(max_length=300, help_text="The exact 'iss' of the tokens.")
    audience = models.CharField(max_length=300, help_text="The 'aud' the tokens must carry.")
    jwks_url = models.URLField(
        max_length=300, blank=True, help_text="Empty: read from the issuer's OpenID discovery document."
    )
    subject_claim = models.CharField(max_length=100, default="sub", help_text="Claim naming the caller.")
    models_claim = models.CharField(
        max_length=100,
        blank=True,
        help_text="Claim holding glob patterns that narrow the models (a list or a space-separated string).",
    )
    tier_claim = models.CharField(
        max_length=100, blank=True, help_text="Claim holding the name of a rate tier for the subject."
    )
    tier = models.ForeignKey(
        RateTier,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Each subject's own rate tier when the token names none.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant", "issuer", "audience"]
        constraints = [
            # One tenant per issuer and audience: a token belongs to exactly one tenant.
            models.UniqueConstraint(fields=["issuer", "audience"], name="uniq_issuer_audience"),
        ]

    def __str__(self) -> str:
        return f"{self.issuer} ({self.audience}) for {self.tenant}"


class TenantMembership(models.Model):
    """Makes a staff user a tenant admin of one tenant: in the admin and the console they see
    and manage only the tenants they are a member of (``quotas.tenancy``). Platform staff
    (superusers, or users with the ``all_tenants`` permission) need no membership."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tenant_memberships"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="admins")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["tenant__name", "user__username"]
        verbose_name = "tenant admin"
        constraints = [models.UniqueConstraint(fields=["user", "tenant"], name="uniq_tenant_membership")]
        permissions = [("all_tenants", "See and manage every tenant (platform staff)")]

    def __str__(self) -> str:
        return f"{self.user} admin of {self.tenant}"
