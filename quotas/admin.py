"""Admin for tenants, keys, access rules, tiers and quotas. Every change bumps the config
revision, so running gateway processes apply it within a second."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import Model, Prefetch, QuerySet
from django.forms import ModelForm
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from quotas.authentication.keys import generate_key
from quotas.live import QuotaUsage, quota_usage
from quotas.models import (
    ApiKey,
    CostQuota,
    ModelAccessRule,
    QuotaAlert,
    RateTier,
    Tenant,
    TenantMembership,
    TierModelLimit,
    TrustedIssuer,
)
from quotas.money import usd
from quotas.revision import bump_revision
from quotas.services import keys_revoke
from quotas.tenancy import tenant_filter, visible_tenant_ids


class RevisionBumpingAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Bumps the control-plane revision once on every save and delete made through the admin.

    The admin calls ``save_related`` right after ``save_model`` (change form and list-editable
    changelist alike), so one bump there covers the object and all its inlines."""

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        bump_revision()

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        super().delete_model(request, obj)
        bump_revision()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        super().delete_queryset(request, queryset)
        bump_revision()


class VisibleTenantFilter(admin.SimpleListFilter):
    """A tenant filter listing only the tenants the user may see (``tenant_field`` names the
    lookup to the tenant's id; subclasses set it)."""

    title = "tenant"
    parameter_name = "tenant"
    tenant_field = "tenant_id"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        tenants = Tenant.objects.order_by("name")
        ids = visible_tenant_ids(request.user)
        if ids is not None:
            tenants = tenants.filter(pk__in=sorted(ids))
        return [(str(pk), name) for pk, name in tenants.values_list("pk", "name")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value is None:
            return queryset
        if not value.isdigit():
            return queryset.none()
        return queryset.filter(**{self.tenant_field: int(value)})


class TenantScopedAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Shows a tenant admin (``quotas.tenancy``) only the rows of their tenants: the change list,
    search, filters, actions, autocomplete and exports all start from ``get_queryset``; an object
    of another tenant is a 404 on its change, delete and history pages (as is a missing one);
    foreign-key choices offer only visible tenants and their keys; ``platform_only_fields`` are
    read-only for them. Platform staff see everything, as before.

    ``tenant_lookups``: the paths from the model to its tenant (any may match)."""

    tenant_lookups: tuple[str, ...] = ("tenant",)
    platform_only_fields: tuple[str, ...] = ()

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        condition = tenant_filter(request.user, *self.tenant_lookups)
        # Every lookup follows foreign keys to one row: filtering adds no duplicates.
        return queryset if condition is None else queryset.filter(condition)

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Any:
        obj = super().get_object(request, object_id, from_field)
        if obj is None and visible_tenant_ids(request.user) is not None:
            # Not the admin's "perhaps it was deleted" redirect: whether it exists is not theirs to know.
            raise Http404("No such object.")
        return obj

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_readonly_fields(request, obj))
        if visible_tenant_ids(request.user) is not None:
            fields += [name for name in self.platform_only_fields if name not in fields]
        return fields

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        return limit_choices(field, db_field.related_model, request)

    def get_list_filter(self, request: HttpRequest) -> Any:
        items = super().get_list_filter(request)
        if visible_tenant_ids(request.user) is not None:
            items = [item for item in items if item not in self.platform_only_fields]
        return [tenant_list_filter(item) for item in items]


def limit_choices(field: Any, related: Any, request: HttpRequest) -> Any:
    """Narrows a form field of a foreign key to a tenant or a key to what the user may see."""
    ids = visible_tenant_ids(request.user)
    if field is None or ids is None:
        return field
    if related is Tenant:
        field.queryset = field.queryset.filter(pk__in=sorted(ids))
    elif related is ApiKey:
        field.queryset = field.queryset.filter(tenant_id__in=sorted(ids))
    return field


def tenant_list_filter(item: Any) -> Any:
    """A ``list_filter`` entry naming the tenant becomes the filter of visible tenants."""
    if item == "tenant":
        return VisibleTenantFilter
    return item


class ScopedInlineMixin:
    """Inlines on a tenant's page: their foreign-key choices narrowed like the page's own."""

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]
        return limit_choices(field, db_field.related_model, request)


def patterns_from_text(text: str) -> list[str]:
    return [p.strip() for chunk in text.splitlines() for p in chunk.split(",") if p.strip()]


class ApiKeyForm(forms.ModelForm):  # type: ignore[type-arg]
    model_patterns = forms.CharField(
        label="Allowed models",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Glob patterns, one per line or comma-separated (e.g. gpt-4o*). "
        "Empty: every model the tenant may use.",
    )

    class Meta:
        model = ApiKey
        fields = ["tenant", "name", "model_patterns", "tier", "expires_at"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["model_patterns"].initial = "\n".join(self.instance.allowed_models or [])

    def save(self, commit: bool = True) -> ApiKey:
        self.instance.allowed_models = patterns_from_text(self.cleaned_data.get("model_patterns", ""))
        return super().save(commit=commit)  # type: ignore[no-any-return]


class TenantKeyInline(admin.TabularInline):  # type: ignore[type-arg]
    model = ApiKey
    fields = ("name", "prefix", "expires_at", "revoked_at", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class AccessRuleInline(ScopedInlineMixin, admin.TabularInline):  # type: ignore[type-arg]
    model = ModelAccessRule
    extra = 0


class TenantQuotaInline(ScopedInlineMixin, admin.TabularInline):  # type: ignore[type-arg]
    model = CostQuota
    fk_name = "tenant"
    fields = ["period", "limit_usd", "hard", "alert_at", "alert_webhook"]
    extra = 0


@admin.register(Tenant)
class TenantAdmin(TenantScopedAdmin, RevisionBumpingAdmin):
    tenant_lookups = ("pk",)
    platform_only_fields = ("name", "tier", "is_active")
    list_display = ["name", "display_name", "tier", "is_active", "log_content", "created_at", "usage_link"]
    list_filter = ["is_active", "tier", "log_content"]
    search_fields = ["name", "display_name"]
    inlines = [AccessRuleInline, TenantQuotaInline, TenantKeyInline]

    @admin.display(description="usage")
    def usage_link(self, obj: Tenant) -> str:
        # The page lives in gateway_site (it reads accounting): linked by path, not imported.
        return format_html('<a href="../../usage/{}/">charts</a>', obj.pk)


# The session entry holding a new key's raw secret between the add form's POST and the page
# that shows it (the redirect's GET), which removes it.
ISSUED_SESSION_KEY = "quotas:issued-key"

_PERIOD_WORD = {"day": "today", "week": "this week", "month": "this month", "lifetime": "in total"}


def tier_limits(tier: RateTier) -> str:
    parts = [
        (tier.requests_per_minute, "req/min"),
        (tier.tokens_per_minute, "tok/min"),
        (tier.requests_per_day, "req/day"),
        (tier.tokens_per_day, "tok/day"),
        (tier.max_parallel, "parallel"),
    ]
    shown = ", ".join(f"{value:,} {unit}" for value, unit in parts if value is not None)
    return f"{tier.name} ({shown})" if shown else tier.name


def with_live_usage(quotas: list[CostQuota]) -> list[tuple[CostQuota, QuotaUsage | None]]:
    """The quotas, each with its current period's usage (None: the counters are unreadable)."""
    usage = quota_usage(quotas)
    return [(quota, None if usage is None else usage[quota.pk]) for quota in quotas]


def usage_bar(usage: QuotaUsage) -> SafeString:
    level = "full" if usage.used_percent >= 100 else "high" if usage.used_percent >= 80 else "ok"
    return format_html(
        '<span class="quota-bar quota-bar-{}" title="{}% used"><span style="width: {}%"></span></span>',
        level,
        usage.used_percent,
        usage.used_percent,
    )


class LiveUsageChangeList(ChangeList):
    """Reads the live quota counters of the page's rows in one go (``attach_live_usage`` of
    the model admin) once the page's rows are loaded."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        self.result_list = list(self.result_list)
        self.model_admin.attach_live_usage(self.result_list)  # type: ignore[attr-defined]


@admin.register(ApiKey)
class ApiKeyAdmin(TenantScopedAdmin, RevisionBumpingAdmin):
    platform_only_fields = ("tier",)
    form = ApiKeyForm
    list_display = [
        "name",
        "tenant",
        "prefix_display",
        "status",
        "limits",
        "spend",
        "last_used_at",
        "created_at",
    ]
    list_filter = ["tenant", "revoked_at"]
    search_fields = ["name", "prefix", "tenant__name"]
    readonly_fields = [
        "prefix",
        "revoked_at",
        "last_used_at",
        "rotated_at",
        "previous_prefix",
        "previous_expires_at",
        "created_at",
    ]
    actions = ["revoke_keys"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiKey]:
        # The key list's columns read every row's tiers and quotas: the rows with their tenant and
        # tiers joined, then their quotas (two queries a page).
        return (
            super()
            .get_queryset(request)
            .select_related("tenant__tier", "tier")
            .prefetch_related(Prefetch("quotas", queryset=CostQuota.objects.order_by("id")))
        )

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return LiveUsageChangeList

    def attach_live_usage(self, keys: list[ApiKey]) -> None:
        quotas = [quota for key in keys for quota in key.quotas.all()]
        usage = dict((quota.pk, live) for quota, live in with_live_usage(quotas))
        for key in keys:
            key.live_quotas = [(quota, usage[quota.pk]) for quota in key.quotas.all()]  # type: ignore[attr-defined]

    @admin.display(description="Key")
    def prefix_display(self, obj: ApiKey) -> str:
        return f"{obj.prefix}…"

    @admin.display(description="Status")
    def status(self, obj: ApiKey) -> str:
        if obj.revoked_at:
            return "revoked"
        if obj.expires_at and obj.expires_at <= timezone.now():
            return "expired"
        return "active"

    @admin.display(description="Limits")
    def limits(self, obj: ApiKey) -> str:
        """The rate tier that applies (the key's own, else its tenant's) and the key's quotas."""
        if obj.tier is not None:
            rate = f"key tier {tier_limits(obj.tier)}"
        elif obj.tenant.tier is not None:
            rate = f"tenant tier {tier_limits(obj.tenant.tier)}"
        else:
            rate = "no rate tier"
        quotas = [f"{usd(q.limit_usd)}/{q.period}{'' if q.hard else ' (soft)'}" for q in obj.quotas.all()]
        return "; ".join([rate, *quotas])

    @admin.display(description="Spend (key quotas)")
    def spend(self, obj: ApiKey) -> str:
        """Each key quota's spend in its current period, from the live counters."""
        live: list[tuple[CostQuota, QuotaUsage | None]] = getattr(obj, "live_quotas", [])
        if not live:
            return "-"
        return format_html_join(
            mark_safe("<br>"),  # a constant
            "{} {} of {}",
            (
                (
                    "unavailable" if usage is None else usd(usage.spent_usd),
                    _PERIOD_WORD[quota.period],
                    usd(quota.limit_usd),
                )
                for quota, usage in live
            ),
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [*super().get_readonly_fields(request, obj), *(["tenant"] if obj else [])]

    def get_urls(self) -> list[URLPattern]:
        issued = path(
            "<int:object_id>/issued/",
            self.admin_site.admin_view(self.issued_view),
            name="quotas_apikey_issued",
        )
        return [issued, *super().get_urls()]

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if not change:
            new = generate_key()
            obj.prefix, obj.key_hash = new.prefix, new.key_hash
            request._issued_key = new.raw  # type: ignore[attr-defined]  # shown once, below
        super().save_model(request, obj, form, change)

    def response_add(
        self, request: HttpRequest, obj: ApiKey, post_url_continue: str | None = None
    ) -> HttpResponse:
        """Redirects to the page that shows the new secret (Post/Redirect/Get: reloading that
        page creates nothing). The secret waits in the session only until that page is served."""
        raw = getattr(request, "_issued_key", None)
        if raw is None:
            return super().response_add(request, obj, post_url_continue)
        request.session[ISSUED_SESSION_KEY] = {"key": obj.pk, "raw": raw}
        response = HttpResponseRedirect(reverse("admin:quotas_apikey_issued", args=[obj.pk]))
        response["Cache-Control"] = "no-store"
        return response

    def issued_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """The new key's secret, exactly once: the first visit takes it out of the session;
        a reload (or any later visit) says it was shown and cannot be shown again."""
        key = get_object_or_404(ApiKey.objects.select_related("tenant"), pk=object_id)
        if not self.has_view_permission(request, key):
            raise PermissionDenied
        pending = request.session.get(ISSUED_SESSION_KEY)
        raw = None
        if isinstance(pending, dict) and pending.get("key") == key.pk:
            raw = pending.get("raw")
            del request.session[ISSUED_SESSION_KEY]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "key": key,
            "raw_key": raw,
            "title": "API key created" if raw else "API key",
        }
        response = TemplateResponse(request, "admin/quotas/apikey/issued.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke selected keys")
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        count = keys_revoke(list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"Revoked {count} key(s).", messages.SUCCESS)


@admin.register(ModelAccessRule)
class ModelAccessRuleAdmin(TenantScopedAdmin, RevisionBumpingAdmin):
    list_display = ["tenant", "effect", "pattern"]
    list_filter = ["effect", "tenant"]


class TierModelLimitInline(admin.TabularInline):  # type: ignore[type-arg]
    model = TierModelLimit
    fields = [
        "position",
        "pattern",
        "requests_per_minute",
        "tokens_per_minute",
        "requests_per_day",
        "tokens_per_day",
        "max_parallel",
    ]
    extra = 0
    verbose_name_plural = "Per-model limits (each matching model counted separately; the first match applies)"


@admin.register(RateTier)
class RateTierAdmin(RevisionBumpingAdmin):
    inlines = [TierModelLimitInline]
    list_display = [
        "name",
        "algorithm",
        "requests_per_minute",
        "tokens_per_minute",
        "requests_per_day",
        "tokens_per_day",
        "max_parallel",
    ]


class CostQuotaForm(ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = CostQuota
        fields = ["tenant", "key", "period", "limit_usd", "hard", "alert_at", "alert_webhook"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if bool(data.get("tenant")) == bool(data.get("key")):
            raise forms.ValidationError("Set exactly one of tenant or key.")
        return data


@admin.register(CostQuota)
class CostQuotaAdmin(TenantScopedAdmin, RevisionBumpingAdmin):
    tenant_lookups = ("tenant", "key__tenant")
    form = CostQuotaForm
    list_display = ["__str__", "period", "limit", "spent", "remaining", "bar", "hard", "alert_at"]
    list_filter = ["period", "hard"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[CostQuota]:
        return super().get_queryset(request).select_related("tenant", "key")

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return LiveUsageChangeList

    def attach_live_usage(self, quotas: list[CostQuota]) -> None:
        for quota, usage in with_live_usage(quotas):
            quota.live_usage = usage  # type: ignore[attr-defined]

    @staticmethod
    def _usage(obj: CostQuota) -> QuotaUsage | None:
        return getattr(obj, "live_usage", None)

    @admin.display(description="Limit", ordering="limit_usd")
    def limit(self, obj: CostQuota) -> str:
        return usd(obj.limit_usd)

    @admin.display(description="Spent this period")
    def spent(self, obj: CostQuota) -> str:
        usage = self._usage(obj)
        if usage is None:
            return "unavailable"
        if usage.reserved_usd:
            return f"{usd(usage.spent_usd)} (+{usd(usage.reserved_usd)} in flight)"
        return usd(usage.spent_usd)

    @admin.display(description="Remaining")
    def remaining(self, obj: CostQuota) -> str:
        usage = self._usage(obj)
        return "unavailable" if usage is None else usd(usage.remaining_usd)

    @admin.display(description="Used")
    def bar(self, obj: CostQuota) -> str:
        usage = self._usage(obj)
        return "" if usage is None else usage_bar(usage)


@admin.register(TrustedIssuer)
class TrustedIssuerAdmin(TenantScopedAdmin, RevisionBumpingAdmin):
    """Identity providers whose bearer JWTs a tenant accepts (docs/security.md). Platform staff
    only by permission (the "Tenant admins" group has none on it: an issuer and audience are
    unique across tenants); scoped to the tenant as well, should an operator grant it."""

    list_display = ["issuer", "audience", "tenant", "jwks_url", "tier", "updated_at"]
    list_filter = ["tenant"]
    search_fields = ["issuer", "audience", "tenant__name"]
    fields = [
        "tenant",
        "issuer",
        "audience",
        "jwks_url",
        "subject_claim",
        "models_claim",
        "tier_claim",
        "tier",
    ]


@admin.register(QuotaAlert)
class QuotaAlertAdmin(TenantScopedAdmin):
    """Alerts that fired, read-only: they are a record of what happened."""

    tenant_lookups = ("quota__tenant", "quota__key__tenant")

    list_display = ["quota", "period_key", "threshold", "spent_usd", "fired_at", "delivered_at", "attempts"]
    list_filter = ["period_key"]
    readonly_fields = [f.name for f in QuotaAlert._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(TenantMembership)
class TenantMembershipAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Who is a tenant admin of which tenant: platform staff only (tenant admins hold no
    permission on it). Users signing in with OIDC get theirs from a claim (docs/security.md)."""

    list_display = ["user", "tenant", "created_at"]
    list_filter = ["tenant"]
    search_fields = ["user__username", "tenant__name"]
    autocomplete_fields = ["user", "tenant"]
