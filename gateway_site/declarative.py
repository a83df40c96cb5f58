"""``applyconfig``: a YAML file of providers, models (with deployments and prices) and rate
tiers, upserted in one transaction. Applying the same file twice changes nothing: rows are
saved only when a field differs, and the config revision is bumped only when something did.

Providers, models and tiers absent from the file are left alone; for each model in the file, its
deployment list is the file's (deployments not listed are removed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Literal, cast

import yaml
from django.db import models, transaction
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from providers.models import Deployment, Provider, PublicModel
from quotas.models import RateTier
from quotas.revision import bump_revision


class ConfigError(Exception):
    pass


def _decimal(value: object) -> object:
    return (
        Decimal(str(value)) if isinstance(value, (int, float, str)) and not isinstance(value, bool) else value
    )


# The columns hold 6 decimal places: a finer price would be rounded on save and then differ from
# the file at every apply.
Price = Annotated[Decimal, BeforeValidator(_decimal), Field(ge=0, max_digits=12, decimal_places=6)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProviderSpec(_Strict):
    name: str = Field(pattern=r"^[-a-zA-Z0-9_]+$", max_length=64)
    kind: Literal["openai", "mock"]
    base_url: str = ""
    api_key_env: str = ""
    timeout_seconds: float | None = Field(default=None, gt=0)
    options: dict[str, object] = Field(default_factory=dict)
    enabled: bool = True

    @model_validator(mode="after")
    def _needs_url(self) -> ProviderSpec:
        if self.kind == "openai" and not self.base_url.startswith(("http://", "https://")):
            raise ValueError("an openai provider needs base_url, an http:// or https:// URL")
        return self


class DeploymentSpec(_Strict):
    provider: str
    model: str = Field(min_length=1, max_length=200)
    priority: int = Field(default=1, ge=0)
    weight: int = Field(default=1, ge=0)
    input_per_million: Price = Decimal("0")
    output_per_million: Price = Decimal("0")
    cached_input_per_million: Price | None = None
    enabled: bool = True


class ModelSpec(_Strict):
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    enabled: bool = True
    deployments: list[DeploymentSpec] = Field(min_length=1)


class TierSpec(_Strict):
    name: str = Field(pattern=r"^[-a-zA-Z0-9_]+$", max_length=64)
    algorithm: Literal["fixed_window", "sliding_window", "token_bucket", "leaky_bucket"] = "sliding_window"
    requests_per_minute: int | None = Field(default=None, ge=0)
    tokens_per_minute: int | None = Field(default=None, ge=0)
    requests_per_day: int | None = Field(default=None, ge=0)
    tokens_per_day: int | None = Field(default=None, ge=0)
    max_parallel: int | None = Field(default=None, ge=0)


class GatewayConfig(_Strict):
    providers: list[ProviderSpec] = Field(default_factory=list)
    models: list[ModelSpec] = Field(default_factory=list)
    tiers: list[TierSpec] = Field(default_factory=list)


@dataclass
class ApplyReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted)


def parse_config(text: str) -> GatewayConfig:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}") from None
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise ConfigError(problems) from None
    _check_unique(config)
    known = {p.name for p in config.providers} | set(Provider.objects.values_list("name", flat=True))
    for model in config.models:
        for deployment in model.deployments:
            if deployment.provider not in known:
                raise ConfigError(f"model {model.name}: unknown provider {deployment.provider!r}")
    return config


def _check_unique(config: GatewayConfig) -> None:
    """A name listed twice would be upserted twice, so the file would never apply cleanly."""
    for section, names in (
        ("providers", [p.name for p in config.providers]),
        ("models", [m.name for m in config.models]),
        ("tiers", [t.name for t in config.tiers]),
    ):
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise ConfigError(f"{section}: {name!r} is listed more than once")
            seen.add(name)
    for model in config.models:
        pairs: set[tuple[str, str]] = set()
        for item in model.deployments:
            if (item.provider, item.model) in pairs:
                raise ConfigError(
                    f"model {model.name}: deployment {item.provider}/{item.model} is listed more than once"
                )
            pairs.add((item.provider, item.model))


def _upsert(
    model: type[models.Model],
    lookup: dict[str, object],
    values: dict[str, object],
    label: str,
    report: ApplyReport,
) -> models.Model:
    obj = model._default_manager.filter(**lookup).first()
    if obj is None:
        obj = model._default_manager.create(**lookup, **values)
        report.created.append(label)
        return obj
    changed = [name for name, value in values.items() if getattr(obj, name) != value]
    if changed:
        for name in changed:
            setattr(obj, name, values[name])
        obj.save()
        report.updated.append(f"{label} ({', '.join(changed)})")
    return obj


@transaction.atomic
def apply_config(config: GatewayConfig) -> ApplyReport:
    report = ApplyReport()
    for provider_spec in config.providers:
        values = provider_spec.model_dump(exclude={"name"})
        values["base_url"] = provider_spec.base_url.rstrip("/")
        _upsert(Provider, {"name": provider_spec.name}, values, f"provider {provider_spec.name}", report)
    for tier in config.tiers:
        _upsert(RateTier, {"name": tier.name}, tier.model_dump(exclude={"name"}), f"tier {tier.name}", report)
    for spec in config.models:
        public = cast(
            PublicModel,
            _upsert(
                PublicModel,
                {"name": spec.name},
                {"description": spec.description, "enabled": spec.enabled},
                f"model {spec.name}",
                report,
            ),
        )
        keep: set[int] = set()
        for item in spec.deployments:
            provider = Provider.objects.get(name=item.provider)
            values = item.model_dump(exclude={"provider", "model"})
            label = f"deployment {spec.name} -> {item.provider}/{item.model}"
            lookup = {"model": public, "provider": provider, "upstream_model": item.model}
            keep.add(_upsert(Deployment, lookup, values, label, report).pk)
        for stale in Deployment.objects.filter(model=public).exclude(pk__in=keep).select_related("provider"):
            report.deleted.append(f"deployment {spec.name} -> {stale.provider.name}/{stale.upstream_model}")
            stale.delete()
    if report.changed:
        bump_revision()
    return report
