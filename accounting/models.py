"""One row per admitted request: who, what, how many tokens, what it cost, how it went."""

from __future__ import annotations

from django.db import models

from quotas.models import ApiKey, Tenant


class UsageRecord(models.Model):
    request_id = models.CharField(max_length=64, unique=True, help_text="The gateway's own id.")
    client_request_id = models.CharField(
        max_length=64, blank=True, help_text="X-Request-ID sent by the client, if any."
    )
    created_at = models.DateTimeField(db_index=True)
    tenant = models.ForeignKey(Tenant, null=True, on_delete=models.SET_NULL, related_name="+")
    tenant_name = models.CharField(max_length=64)
    key = models.ForeignKey(ApiKey, null=True, on_delete=models.SET_NULL, related_name="+")
    key_prefix = models.CharField(max_length=16)
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
    cost_usd = models.DecimalField(max_digits=20, decimal_places=10, default=0)
    status = models.PositiveSmallIntegerField(help_text="HTTP status returned to the client.")
    error_type = models.CharField(max_length=64, blank=True)
    streamed = models.BooleanField(default=False)
    client_disconnected = models.BooleanField(default=False)
    latency_ms = models.FloatField()
    upstream_latency_ms = models.FloatField(default=0)
    ttft_ms = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "created_at"], name="usage_tenant_time")]

    def __str__(self) -> str:
        return self.request_id
