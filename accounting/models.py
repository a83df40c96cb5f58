"""One row per admitted request (``UsageRecord``: who, what, how many tokens, what it cost, how it
went) and the price versions costs are computed from (``DeploymentPrice``)."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now

from quotas.models import ApiKey, Tenant


class DeploymentPrice(models.Model):
    """One price version of a deployment, in US dollars per million tokens, in force from
    ``effective_from`` until the next version's. Records keep the version they were billed at,
    so changing prices never changes a past cost. ``deployment_id`` is the id of a
    ``providers.Deployment`` (no foreign key: accounting does not depend on providers)."""

    deployment_id = models.BigIntegerField(db_index=True)
    deployment_label = models.CharField(
        max_length=300, blank=True, help_text="model -> provider/upstream model, for display."
    )
    effective_from = models.DateTimeField()
    input_per_million = models.DecimalField(max_digits=12, decimal_places=6)
    output_per_million = models.DecimalField(max_digits=12, decimal_places=6)
    cached_input_per_million = models.DecimalField(
        max_digits=12,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="Cache reads; empty: the input price.",
    )
    cache_write_per_million = models.DecimalField(
        max_digits=12,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="Cache creation, where the provider charges it; empty: the input price.",
    )
    source = models.CharField(max_length=64, blank=True, help_text="Where the price came from.")

    class Meta:
        ordering = ["deployment_id", "-effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["deployment_id", "effective_from"], name="uniq_price_version")
        ]
        verbose_name = "deployment price"

    def __str__(self) -> str:
        return f"{self.deployment_label or self.deployment_id} from {self.effective_from:%Y-%m-%d %H:%M}"


class UsageRecord(models.Model):
    request_id = models.CharField(max_length=64, db_index=True, help_text="The gateway's own id.")
    client_request_id = models.CharField(
        max_length=64, blank=True, help_text="X-Request-ID sent by the client, if any."
    )
    created_at = models.DateTimeField(db_index=True)
    ingested_at = models.DateTimeField(
        db_default=Now(), db_index=True, help_text="When the database stored it (rollup watermark)."
    )
    tenant = models.ForeignKey(Tenant, null=True, on_delete=models.SET_NULL, related_name="+")
    tenant_name = models.CharField(max_length=64)
    key = models.ForeignKey(ApiKey, null=True, on_delete=models.SET_NULL, related_name="+")
    key_prefix = models.CharField(max_length=16)
    # NULL for a request made with a key; a token's subject otherwise (never empty).
    subject = models.CharField(  # noqa: DJ001
        max_length=255, null=True, blank=True, help_text="The subject of the bearer token (no key: a JWT)."
    )
    endpoint = models.CharField(max_length=32, default="chat.completions")
    model = models.CharField(max_length=200, help_text="Public model name the client sent.")
    deployment_id = models.BigIntegerField(null=True)
    provider = models.CharField(max_length=64)
    upstream_model = models.CharField(max_length=200)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    reasoning_tokens = models.PositiveIntegerField(default=0)
    usage_estimated = models.BooleanField(
        default=False, help_text="Tokens counted by the gateway because the upstream reported none."
    )
    cache_write_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=20, decimal_places=10, default=0)
    price_version = models.ForeignKey(
        DeploymentPrice,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
        help_text="The price version billed; empty: the deployment's own prices.",
    )
    cache_hit = models.BooleanField(default=False, help_text="Served from the response cache.")
    cost_saved_usd = models.DecimalField(
        max_digits=20, decimal_places=10, default=0, help_text="Upstream cost a cache hit avoided."
    )
    status = models.PositiveSmallIntegerField(help_text="HTTP status returned to the client.")
    error_type = models.CharField(max_length=64, blank=True)
    streamed = models.BooleanField(default=False)
    client_disconnected = models.BooleanField(default=False)
    latency_ms = models.FloatField()
    upstream_latency_ms = models.FloatField(default=0)
    ttft_ms = models.FloatField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(
        db_default=1,
        help_text="Upstream calls made: retries and fallbacks included (0: none, e.g. a cache hit).",
    )
    fell_back = models.BooleanField(db_default=False, help_text="Answered by a fallback deployment.")

    class Meta:
        ordering = ["-created_at"]
        # The request log's filters (gateway_site.console.request_log), each with the time it is
        # ordered by, so a filtered page reads an index range, newest first, and stops.
        indexes = [
            models.Index(fields=["tenant", "created_at"], name="usage_tenant_time"),
            models.Index(fields=["key", "created_at"], name="usage_key_time"),
            models.Index(fields=["model", "created_at"], name="usage_model_time"),
            models.Index(fields=["provider", "created_at"], name="usage_provider_time"),
            models.Index(fields=["deployment_id", "created_at"], name="usage_deployment_time"),
            models.Index(fields=["status", "created_at"], name="usage_status_time"),
            models.Index(fields=["endpoint", "created_at"], name="usage_endpoint_time"),
            models.Index(
                fields=["created_at"], condition=models.Q(cache_hit=True), name="usage_cache_hit_time"
            ),
            models.Index(fields=["client_request_id"], name="usage_client_request"),
            models.Index(fields=["latency_ms"], name="usage_latency"),
        ]
        # With created_at: on PostgreSQL the table is partitioned by month of created_at
        # (accounting.partitions), and a duplicate of an event always has the same created_at.
        constraints = [
            models.UniqueConstraint(fields=["request_id", "created_at"], name="usage_request_once")
        ]

    def __str__(self) -> str:
        return self.request_id


class UsageRollup(models.Model):
    """Usage per tenant, key, model, provider and hour or day (UTC), rebuilt idempotently from
    the raw records by ``accounting.rollups.usage_rollup``; kept when raw records are purged.
    ``tenant_id`` / ``key_id`` are plain ids (0: deleted) so the unique key never holds NULL."""

    class Granularity(models.TextChoices):
        HOUR = "hour"
        DAY = "day"

    granularity = models.CharField(max_length=4, choices=Granularity.choices)
    bucket_start = models.DateTimeField()
    tenant_id = models.BigIntegerField()
    tenant_name = models.CharField(max_length=64)
    key_id = models.BigIntegerField()
    key_prefix = models.CharField(max_length=16)
    model = models.CharField(max_length=200)
    provider = models.CharField(max_length=64)
    requests = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    cache_hits = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    cached_tokens = models.PositiveBigIntegerField(default=0)
    reasoning_tokens = models.PositiveBigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=24, decimal_places=10, default=0)
    cost_saved_usd = models.DecimalField(max_digits=24, decimal_places=10, default=0)
    cost_micro = models.PositiveBigIntegerField(
        default=0,
        help_text="The cost in micro-dollars, each record rounded up (the cost quota counters' rule).",
    )
    latency_ms_sum = models.FloatField(
        db_default=0.0,
        help_text="The records' latencies added up (mean: divided by requests); 0 in rollups made "
        "before it was kept.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["granularity", "bucket_start", "tenant_id", "key_id", "model", "provider"],
                name="uniq_usage_rollup",
            )
        ]
        indexes = [
            models.Index(fields=["tenant_id", "granularity", "bucket_start"], name="rollup_tenant_time"),
            models.Index(fields=["key_id", "granularity", "bucket_start"], name="rollup_key_time"),
        ]

    def __str__(self) -> str:
        return f"{self.granularity} {self.bucket_start:%Y-%m-%d %H:00} {self.tenant_name} {self.model}"


class RollupState(models.Model):
    """One row: records ingested up to ``rolled_through`` are in the rollups."""

    rolled_through = models.DateTimeField(null=True)

    def __str__(self) -> str:
        return f"rolled up through {self.rolled_through}"


class RequestContent(models.Model):
    """The redacted prompt and reply of one request, kept only for a tenant that turned content
    logging on (``Tenant.log_content``), encrypted at rest with the provider-secret keys
    (Fernet, ``GATEWAY_SECRETS_KEYS``) by ``gateway_site.runtime.content_store``, and deleted
    after ``GATEWAY_CONTENT_RETENTION_DAYS`` (``accounting.tasks.purge_request_content``).
    ``request_id`` is the usage record's (no foreign key: the records are partitioned)."""

    request_id = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(db_index=True)
    tenant_id = models.BigIntegerField()
    prompt = models.TextField(help_text="Encrypted: the redacted prompt messages' texts (a JSON list).")
    reply = models.TextField(help_text="Encrypted: the redacted reply text.")

    class Meta:
        verbose_name = "request content"
        verbose_name_plural = "request contents"

    def __str__(self) -> str:
        return self.request_id
