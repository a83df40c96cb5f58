"""Admin for providers, models and deployments. Registered here, at the edge, because changes
must bump the control-plane revision owned by ``quotas`` and ``providers`` imports nothing of
ours. A deployment is saved only priced or declared free (``price_coverage``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib import admin

from accounting.prices import versions_in_force
from gateway_site.console.declarative import fallback_problems
from gateway_site.console.price_coverage import charges, unpriced_message
from providers.kinds.record import ProviderSettings
from providers.kinds.settings import check_options, check_settings, option_specs
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


def option_field(name: str) -> str:
    return f"option_{name}"


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
            "aws_credentials_file",
            "tls_ca_bundle",
            "tls_client_cert",
            "tls_client_key",
            "timeout_seconds",
            "enabled",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        stored = self.instance.options if isinstance(self.instance.options, dict) else {}
        for name in option_specs():
            if name in stored:
                self.initial.setdefault(option_field(name), stored[name])

    def entered_options(self, data: dict[str, Any]) -> dict[str, object]:
        """The stored options with the form's option fields applied (entries that no kind reads
        are kept as they were; an emptied field removes its entry)."""
        stored = self.instance.options if isinstance(self.instance.options, dict) else {}
        options = dict(stored)
        for name in option_specs():
            value = data.get(option_field(name))
            if value is None:
                options.pop(name, None)
            else:
                options[name] = int(value) if float(value).is_integer() else value
        return options

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
            aws_credentials_file=data.get("aws_credentials_file") or "",
        )
        for name, message in check_settings(entered):
            self.add_error(name if name in self.fields else None, message)
        self.options = self.entered_options(data)
        for name, message in check_options(entered.kind, self.options):
            field = option_field(name)
            self.add_error(field if field in self.fields and field not in self.errors else None, message)
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
        self.instance.options = self.options
        return super().save(commit=commit)  # type: ignore[no-any-return]


# One field per option a provider kind reads (the kinds' registry) instead of a JSON box:
# declared on the class, so that the admin lays them out like the model's own fields.
for _name, (_option, _kinds) in option_specs().items():
    ProviderForm.base_fields[option_field(_name)] = ProviderForm.declared_fields[option_field(_name)] = (
        forms.FloatField(
            label=_option.label,
            required=False,
            min_value=_option.minimum,
            max_value=_option.maximum,
            help_text=f"{' / '.join(_kinds)} only. {_option.help_text}",
        )
    )


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


FALLBACK_SLOTS = 4


class FallbacksWidget(forms.MultiWidget):
    """One select per position: the first fallback, the second, …"""

    def decompress(self, value: Any) -> list[str]:
        names = [str(name) for name in value] if isinstance(value, list) else []
        return names + [""] * (len(self.widgets) - len(names))


class FallbacksField(forms.MultiValueField):
    """Public models tried in order when every deployment of the model failed; empty positions
    are skipped."""

    def __init__(self, *, choices: list[tuple[str, str]], slots: int, **kwargs: Any) -> None:
        fields = [forms.ChoiceField(choices=choices, required=False) for _ in range(slots)]
        widget = FallbacksWidget([forms.Select(choices=choices) for _ in range(slots)])
        super().__init__(fields, require_all_fields=False, required=False, widget=widget, **kwargs)

    def compress(self, data_list: list[str]) -> list[str]:
        return [name for name in data_list if name]


PUBLIC_MODEL_FIELDS = (
    "name",
    "description",
    "enabled",
    "strategy",
    "fallbacks",
    "timeout_seconds",
    "cache_ttl_seconds",
    "cache_key",
)


class PublicModelForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = PublicModel
        fields = list(PUBLIC_MODEL_FIELDS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = list(PublicModel.objects.exclude(pk=self.instance.pk).values_list("name", flat=True))
        current = self.instance.fallbacks if isinstance(self.instance.fallbacks, list) else []
        # A stored name no longer a model stays selectable, so that the form shows what is stored.
        names += [str(name) for name in current if name not in names]
        self.fields["fallbacks"] = FallbacksField(
            choices=[("", "---------"), *((name, name) for name in sorted(names))],
            slots=max(FALLBACK_SLOTS, len(current) + 1),
            label="Fallbacks",
            initial=current,
            help_text="Other public models tried, in this order, when every deployment of this one failed.",
        )

    def clean_fallbacks(self) -> list[str]:
        chosen: list[str] = self.cleaned_data.get("fallbacks") or []
        name = self.cleaned_data.get("name") or self.instance.name
        known = set(PublicModel.objects.exclude(pk=self.instance.pk).values_list("name", flat=True))
        problems = fallback_problems(name, chosen, known)
        if problems:
            raise forms.ValidationError([problem[0].upper() + problem[1:] + "." for problem in problems])
        return chosen


@admin.register(PublicModel)
class PublicModelAdmin(RevisionBumpingAdmin):
    form = PublicModelForm
    list_display = ["name", "strategy", "enabled", "deployment_count", "created_at"]
    list_filter = ["enabled", "strategy"]
    fields = PUBLIC_MODEL_FIELDS
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
