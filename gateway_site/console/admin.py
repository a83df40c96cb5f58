"""Admin for providers, models and deployments. Registered here, at the edge, because changes
must bump the control-plane revision owned by ``quotas`` and ``providers`` imports nothing of
ours. A deployment is saved only priced or declared free (``price_coverage``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib import admin

from accounting.prices import versions_in_force
from gateway_site.console.price_coverage import charges, unpriced_message
from providers.kinds.record import ProviderSettings
from providers.kinds.settings import check_settings
from providers.models import Deployment, Provider, PublicModel
from providers.secrets import encrypt_secret
from quotas.admin import RevisionBumpingAdmin


def _write_only(label: str, help_text: str) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=help_text,
    )


class ProviderForm(forms.ModelForm):  # type: ignore[type-arg]
    api_key = _write_only(
        "API key",
        "Write-only: stored encrypted, never shown again. Leave empty to keep the current one. "
        "A stored key wins over the environment variable. For bedrock: a Bedrock API key "
        "(sent as a bearer token instead of SigV4 signing).",
    )
    clear_api_key = forms.BooleanField(label="Remove the stored API key", required=False)
    aws_secret_access_key = _write_only(
        "AWS secret access key",
        "bedrock: write-only, stored encrypted, never shown again; wins over the environment variable.",
    )
    clear_aws_secret_access_key = forms.BooleanField(
        label="Remove the stored AWS secret access key", required=False
    )

    class Meta:
        model = Provider
        fields = [
            "name",
            "kind",
            "base_url",
            "api_key",
            "clear_api_key",
            "api_key_env",
            "api_key_file",
            "api_version",
            "region",
            "aws_access_key_id",
            "aws_access_key_id_env",
            "aws_secret_access_key",
            "clear_aws_secret_access_key",
            "aws_secret_access_key_env",
            "aws_session_token_env",
            "tls_ca_bundle",
            "tls_client_cert",
            "tls_client_key",
            "timeout_seconds",
            "options",
            "enabled",
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        instance = self.instance
        has_key = bool(data.get("api_key")) or (instance.has_stored_key and not data.get("clear_api_key"))
        has_secret = bool(data.get("aws_secret_access_key")) or (
            instance.has_stored_aws_secret and not data.get("clear_aws_secret_access_key")
        )
        entered = ProviderSettings(
            kind=data.get("kind") or "",
            base_url=data.get("base_url") or "",
            api_version=data.get("api_version") or "",
            region=data.get("region") or "",
            api_key_env=data.get("api_key_env") or "",
            has_api_key=has_key,
            aws_access_key_id=data.get("aws_access_key_id") or "",
            aws_access_key_id_env=data.get("aws_access_key_id_env") or "",
            aws_secret_access_key_env=data.get("aws_secret_access_key_env") or "",
            aws_session_token_env=data.get("aws_session_token_env") or "",
            has_aws_secret_access_key=has_secret,
        )
        for name, message in check_settings(entered):
            self.add_error(name if name in self.fields else None, message)
        return data

    def save(self, commit: bool = True) -> Provider:
        data = self.cleaned_data
        if data.get("clear_api_key"):
            self.instance.api_key_encrypted = ""
        if data.get("api_key"):
            self.instance.api_key_encrypted = encrypt_secret(data["api_key"])
        if data.get("clear_aws_secret_access_key"):
            self.instance.aws_secret_access_key_encrypted = ""
        if data.get("aws_secret_access_key"):
            self.instance.aws_secret_access_key_encrypted = encrypt_secret(data["aws_secret_access_key"])
        return super().save(commit=commit)  # type: ignore[no-any-return]


@admin.register(Provider)
class ProviderAdmin(RevisionBumpingAdmin):
    form = ProviderForm
    list_display = ["name", "kind", "base_url", "region", "api_key_env", "stored_key", "enabled"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name"]

    @admin.display(boolean=True, description="Stored key")
    def stored_key(self, obj: Provider) -> bool:
        return obj.has_stored_key


# A deployment's fields as edited, on its own page (plus its model) and inline on its model's.
DEPLOYMENT_FIELDS = (
    "provider",
    "upstream_model",
    "priority",
    "weight",
    "input_per_million",
    "output_per_million",
    "cached_input_per_million",
    "free",
    "enabled",
)


class DeploymentForm(forms.ModelForm):  # type: ignore[type-arg]
    """Refuses a deployment that would serve for nothing unannounced: one whose prices charge
    nothing, with no price version in force, and not ticked Free; and a Free one with prices."""

    class Meta:
        model = Deployment
        fields = ("model", *DEPLOYMENT_FIELDS)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        paid = charges(
            input_per_million=data.get("input_per_million"), output_per_million=data.get("output_per_million")
        )
        if data.get("free"):
            if paid or data.get("cached_input_per_million"):
                self.add_error("free", "A free deployment takes no prices: clear them, or untick Free.")
        elif not paid and not self._version_in_force():
            message = unpriced_message([self._label(data)])
            raise forms.ValidationError(message[0].upper() + message[1:] + ".")
        return data

    def _version_in_force(self) -> bool:
        pk = self.instance.pk
        return pk is not None and bool(versions_in_force([pk], at=dt.datetime.now(dt.UTC)))

    def _label(self, data: dict[str, Any]) -> str:
        model = getattr(data.get("model") or getattr(self.instance, "model", None), "name", "?")
        provider = getattr(data.get("provider"), "name", "?")
        return f"{model} -> {provider}/{data.get('upstream_model', '')}"


class DeploymentInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Deployment
    form = DeploymentForm
    fields = DEPLOYMENT_FIELDS
    extra = 0


@admin.register(PublicModel)
class PublicModelAdmin(RevisionBumpingAdmin):
    list_display = ["name", "strategy", "enabled", "deployment_count", "created_at"]
    list_filter = ["enabled", "strategy"]
    fields = [
        "name",
        "description",
        "enabled",
        "strategy",
        "fallbacks",
        "timeout_seconds",
        "cache_ttl_seconds",
        "cache_key",
    ]
    search_fields = ["name"]
    inlines = [DeploymentInline]

    @admin.display(description="Deployments")
    def deployment_count(self, obj: PublicModel) -> int:
        return obj.deployments.count()


@admin.register(Deployment)
class DeploymentAdmin(RevisionBumpingAdmin):
    form = DeploymentForm
    list_display = [
        "model",
        "provider",
        "upstream_model",
        "priority",
        "weight",
        "input_per_million",
        "output_per_million",
        "free",
        "enabled",
    ]
    list_filter = ["provider", "free", "enabled"]
    search_fields = ["model__name", "upstream_model"]
