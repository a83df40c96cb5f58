"""Admin: read-only raw usage records; editable price versions (saving one reloads every
gateway's prices, as any configuration change does)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from accounting.models import DeploymentPrice, UsageRecord
from quotas.admin import RevisionBumpingAdmin, TenantScopedAdmin
from quotas.money import usd


@admin.register(DeploymentPrice)
class DeploymentPriceAdmin(RevisionBumpingAdmin):
    list_display = [
        "deployment_label",
        "deployment_id",
        "effective_from",
        "input_per_million",
        "output_per_million",
        "cached_input_per_million",
        "cache_write_per_million",
        "source",
    ]
    list_filter = ["source"]
    search_fields = ["deployment_label"]
    ordering = ["deployment_label", "-effective_from"]


@admin.register(UsageRecord)
class UsageRecordAdmin(TenantScopedAdmin):
    """The request log; a tenant admin sees their tenants' records only."""

    list_display = [
        "created_at",
        "tenant_name",
        "key_prefix",
        "subject",
        "model",
        "provider",
        "status",
        "tokens",
        "cost",
        "cache_hit",
        "latency",
        "streamed",
    ]
    list_filter = ["status", "streamed", "provider", "model"]
    search_fields = ["request_id", "client_request_id", "tenant_name", "key_prefix", "subject"]
    date_hierarchy = "created_at"
    show_full_result_count = False

    @admin.display(description="tokens (in + out)", ordering="prompt_tokens")
    def tokens(self, record: UsageRecord) -> str:
        return f"{record.prompt_tokens:,} + {record.completion_tokens:,}"

    @admin.display(description="latency", ordering="latency_ms")
    def latency(self, record: UsageRecord) -> str:
        return f"{record.latency_ms:,.0f} ms"

    @admin.display(description="cost", ordering="cost_usd")
    def cost(self, record: UsageRecord) -> str:
        return usd(record.cost_usd)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
