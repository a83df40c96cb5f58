"""Admin for providers, models and deployments. Registered here, at the edge, because changes
must bump the control-plane revision owned by ``quotas`` and ``providers`` imports nothing of
ours."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin

from providers.models import Deployment, Provider, PublicModel
from providers.secrets import encrypt_secret
from quotas.admin import RevisionBumpingAdmin


class ProviderForm(forms.ModelForm):  # type: ignore[type-arg]
    api_key = forms.CharField(
        label="API key",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only: stored encrypted, never shown again. Leave empty to keep the "
        "current one. A stored key wins over the environment variable.",
    )
    clear_api_key = forms.BooleanField(label="Remove the stored API key", required=False)

    class Meta:
        model = Provider
        fields = [
            "name",
            "kind",
            "base_url",
            "api_key",
            "clear_api_key",
            "api_key_env",
            "timeout_seconds",
            "options",
            "enabled",
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("kind") == Provider.Kind.OPENAI and not data.get("base_url"):
            self.add_error("base_url", "An OpenAI-compatible provider needs a base URL.")
        return data

    def save(self, commit: bool = True) -> Provider:
        if self.cleaned_data.get("clear_api_key"):
            self.instance.api_key_encrypted = ""
        if self.cleaned_data.get("api_key"):
            self.instance.api_key_encrypted = encrypt_secret(self.cleaned_data["api_key"])
        return super().save(commit=commit)  # type: ignore[no-any-return]


@admin.register(Provider)
class ProviderAdmin(RevisionBumpingAdmin):
    form = ProviderForm
    list_display = ["name", "kind", "base_url", "api_key_env", "stored_key", "enabled"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name"]

    @admin.display(boolean=True, description="Stored key")
    def stored_key(self, obj: Provider) -> bool:
        return obj.has_stored_key


class DeploymentInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Deployment
    fields = [
        "provider",
        "upstream_model",
        "priority",
        "weight",
        "input_per_million",
        "output_per_million",
        "cached_input_per_million",
        "enabled",
    ]
    extra = 0


@admin.register(PublicModel)
class PublicModelAdmin(RevisionBumpingAdmin):
    list_display = ["name", "enabled", "deployment_count", "created_at"]
    list_filter = ["enabled"]
    search_fields = ["name"]
    inlines = [DeploymentInline]

    @admin.display(description="Deployments")
    def deployment_count(self, obj: PublicModel) -> int:
        return obj.deployments.count()


@admin.register(Deployment)
class DeploymentAdmin(RevisionBumpingAdmin):
    list_display = [
        "model",
        "provider",
        "upstream_model",
        "priority",
        "input_per_million",
        "output_per_million",
        "enabled",
    ]
    list_filter = ["provider", "enabled"]
    search_fields = ["model__name", "upstream_model"]
