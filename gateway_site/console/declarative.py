"""``applyconfig``: a YAML file of providers, models (with deployments and prices), rate tiers
(with per-model lines) and tenants (with their tier and cost quotas), upserted in one
transaction. Applying the same file twice changes nothing: rows are saved only when a field
differs, and the config revision is bumped only when something did.

Providers, models, tiers and tenants absent from the file are left alone; for each model in the
file, its deployment list is the file's (deployments not listed are removed), and likewise a
tier's per-model lines and a tenant's quotas.

Nothing is applied while an enabled deployment has no price and is not declared ``free``
(``price_coverage``): it would serve every request for $0, out of reach of every cost quota."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Literal, TypeVar

import yaml
from django.db import models, transaction
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from accounting.prices import price_upsert
from gateway_site.console.price_coverage import charges, unpriced, unpriced_message
from providers.kinds.record import ProviderSettings
from providers.kinds.registry import NAMES, find
from providers.kinds.settings import check_options, check_settings
from providers.models import Deployment, Provider, PublicModel
from quotas.models import CostQuota, RateTier, Tenant, TierModelLimit, TrustedIssuer
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


EnvName = Annotated[str, Field(pattern=r"^([A-Za-z_][A-Za-z0-9_]*)?$", max_length=100)]
FilePath = Annotated[str, Field(pattern=r"^(/[^\x00]*)?$", max_length=500)]


def _provider_kind(value: object) -> str:
    """A kind of the registry; anything else gets the error pydantic gives for a ``Literal`` of
    the kinds' names."""
    if isinstance(value, str) and find(value) is not None:
        return value
    expected = f"{', '.join(repr(name) for name in NAMES[:-1])} or {NAMES[-1]!r}"
    raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": expected})


KindName = Annotated[str, PlainValidator(_provider_kind)]


class ProviderSpec(_Strict):
    """A provider; secrets are named by environment variable or file only, never written in the file."""

    name: str = Field(pattern=r"^[-a-zA-Z0-9_]+$", max_length=64)
    kind: KindName
    base_url: str = ""
    api_key_env: EnvName = ""
    api_version: str = Field(default="", max_length=40)
    region: str = Field(default="", pattern=r"^([a-z0-9-]+)?$", max_length=40)
    aws_access_key_id_env: EnvName = ""
    aws_secret_access_key_env: EnvName = ""
    aws_session_token_env: EnvName = ""
    # Files (mounted secrets and certificates), re-read when they change: absolute paths.
    api_key_file: FilePath = ""
    aws_credentials_file: FilePath = ""
    tls_ca_bundle: FilePath = ""
    tls_client_cert: FilePath = ""
    tls_client_key: FilePath = ""
    timeout_seconds: float | None = Field(default=None, gt=0)
    options: dict[str, object] = Field(default_factory=dict)
    enabled: bool = True

    @model_validator(mode="after")
    def _files(self) -> ProviderSpec:
        if self.api_key_file and self.api_key_env:
            raise ValueError("set api_key_env or api_key_file, not both")
        if bool(self.tls_client_cert) != bool(self.tls_client_key):
            raise ValueError("tls_client_cert and tls_client_key go together")
        return self

    @model_validator(mode="after")
    def _kind_settings(self) -> ProviderSpec:
        problems = check_settings(
            ProviderSettings(
                kind=self.kind,
                base_url=self.base_url,
                api_version=self.api_version,
                region=self.region,
                api_key_env=self.api_key_env,
                aws_access_key_id_env=self.aws_access_key_id_env,
                aws_secret_access_key_env=self.aws_secret_access_key_env,
                aws_session_token_env=self.aws_session_token_env,
                aws_credentials_file=self.aws_credentials_file,
            )
        )
        problems += check_options(self.kind, self.options)
        if problems:
            raise ValueError(" ".join(message for _, message in problems))
        return self


class DeploymentSpec(_Strict):
    provider: str
    model: str = Field(min_length=1, max_length=200)
    priority: int = Field(default=1, ge=0)
    weight: int = Field(default=1, ge=0)
    input_per_million: Price = Decimal("0")
    output_per_million: Price = Decimal("0")
    cached_input_per_million: Price | None = None
    free: bool = False
    enabled: bool = True

    @model_validator(mode="after")
    def _free_takes_no_prices(self) -> DeploymentSpec:
        paid = charges(input_per_million=self.input_per_million, output_per_million=self.output_per_million)
        if self.free and (paid or self.cached_input_per_million):
            raise ValueError("a free deployment takes no prices")
        return self


class CacheSpec(_Strict):
    ttl_seconds: int = Field(gt=0, le=2**31 - 1)
    key: Literal["full_request", "messages_only"] = "full_request"


class ModelSpec(_Strict):
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    enabled: bool = True
    strategy: Literal["model", "round_robin", "weighted", "least_latency", "cost_optimized", "fallback"] = (
        "model"
    )
    fallbacks: list[str] = Field(default_factory=list)
    timeout_seconds: float | None = Field(default=None, ge=0.1)
    cache: CacheSpec | None = None
    deployments: list[DeploymentSpec] = Field(min_length=1)

    def public_model_values(self) -> dict[str, object]:
        return {
            "description": self.description,
            "enabled": self.enabled,
            "strategy": self.strategy,
            "fallbacks": self.fallbacks,
            "timeout_seconds": self.timeout_seconds,
            "cache_ttl_seconds": self.cache.ttl_seconds if self.cache else None,
            "cache_key": self.cache.key if self.cache else "full_request",
        }


class _LimitsSpec(_Strict):
    requests_per_minute: int | None = Field(default=None, ge=0, le=2**31 - 1)
    tokens_per_minute: int | None = Field(default=None, ge=0, le=2**31 - 1)
    requests_per_day: int | None = Field(default=None, ge=0, le=2**31 - 1)
    tokens_per_day: int | None = Field(default=None, ge=0, le=2**63 - 1)
    max_parallel: int | None = Field(default=None, ge=0, le=2**31 - 1)


class TierModelSpec(_LimitsSpec):
    pattern: str = Field(min_length=1, max_length=200)


class TierSpec(_LimitsSpec):
    name: str = Field(pattern=r"^[-a-zA-Z0-9_]+$", max_length=64)
    algorithm: Literal["fixed_window", "sliding_window", "token_bucket", "leaky_bucket"] = "sliding_window"
    models: list[TierModelSpec] = Field(default_factory=list)


class QuotaSpec(_Strict):
    period: Literal["day", "week", "month", "lifetime"] = "month"
    limit_usd: Annotated[Decimal, BeforeValidator(_decimal), Field(ge=0, max_digits=14, decimal_places=4)]
    hard: bool = True
    alert_at: Annotated[Decimal, BeforeValidator(_decimal), Field(ge=0, le=1, decimal_places=3)] | None = None
    alert_webhook: str = Field(default="", pattern=r"^(https?://\S+)?$", max_length=200)


ClaimName = Annotated[str, Field(max_length=100, pattern=r"^[^\s]*$")]


class ClaimsSpec(_Strict):
    subject: ClaimName = Field(default="sub", min_length=1)
    models: ClaimName = ""
    tier: ClaimName = ""


class IdentitySpec(_Strict):
    """An identity provider whose bearer JWTs the tenant accepts (``TrustedIssuer``)."""

    issuer: str = Field(pattern=r"^https?://\S+$", max_length=300)
    audience: str = Field(min_length=1, max_length=300)
    jwks_url: str = Field(default="", pattern=r"^(https?://\S+)?$", max_length=300)
    claims: ClaimsSpec = Field(default_factory=ClaimsSpec)
    tier: str | None = None  # each subject's own rate tier when the token names none


class TenantSpec(_Strict):
    name: str = Field(pattern=r"^[-a-zA-Z0-9_]+$", max_length=64)
    display_name: str = Field(default="", max_length=200)
    tier: str | None = None
    is_active: bool = True
    log_content: bool = False
    quotas: list[QuotaSpec] = Field(default_factory=list)
    # Absent: the tenant's trusted issuers are left alone; given: they are the file's.
    identity: IdentitySpec | list[IdentitySpec] | None = None

    def identities(self) -> list[IdentitySpec] | None:
        return [self.identity] if isinstance(self.identity, IdentitySpec) else self.identity


class PriceSpec(_Strict):
    """A price version for every deployment of ``provider`` (a provider name or kind) serving
    the upstream ``model`` (docs/usage-and-billing.md, "Pricing")."""

    provider: str = Field(min_length=1, max_length=64)
    model: str = Field(min_length=1, max_length=200)
    effective_from: dt.datetime
    input_per_million: Price
    output_per_million: Price
    cached_input_per_million: Price | None = None
    cache_write_per_million: Price | None = None

    @model_validator(mode="before")
    @classmethod
    def _date_is_midnight_utc(cls, data: object) -> object:
        if isinstance(data, dict) and type(data.get("effective_from")) is dt.date:
            day = data["effective_from"]
            data = {**data, "effective_from": dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)}
        return data

    def moment(self) -> dt.datetime:
        when = self.effective_from
        return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


class GatewayConfig(_Strict):
    providers: list[ProviderSpec] = Field(default_factory=list)
    models: list[ModelSpec] = Field(default_factory=list)
    tiers: list[TierSpec] = Field(default_factory=list)
    tenants: list[TenantSpec] = Field(default_factory=list)
    prices: list[PriceSpec] = Field(default_factory=list)


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
    _check_fallbacks(config)
    tiers = {t.name for t in config.tiers} | set(RateTier.objects.values_list("name", flat=True))
    for tenant in config.tenants:
        if tenant.tier is not None and tenant.tier not in tiers:
            raise ConfigError(f"tenant {tenant.name}: unknown tier {tenant.tier!r}")
        for identity in tenant.identities() or []:
            if identity.tier is not None and identity.tier not in tiers:
                raise ConfigError(
                    f"tenant {tenant.name}: identity {identity.issuer}: unknown tier {identity.tier!r}"
                )
    _check_issuers(config)
    return config


def _check_issuers(config: GatewayConfig) -> None:
    """An issuer and audience belong to one tenant: in the file and among the tenants it leaves alone."""
    owners: dict[tuple[str, str], str] = {}
    for tenant in config.tenants:
        for identity in tenant.identities() or []:
            pair = (identity.issuer, identity.audience)
            if pair in owners:
                raise ConfigError(
                    f"tenant {tenant.name}: identity {identity.issuer} (audience {identity.audience!r}) "
                    f"is already trusted by tenant {owners[pair]}"
                )
            owners[pair] = tenant.name
    listed = {t.name for t in config.tenants if t.identity is not None}
    for row in TrustedIssuer.objects.exclude(tenant__name__in=listed).select_related("tenant"):
        other = owners.get((row.issuer, row.audience))
        if other is not None:
            raise ConfigError(
                f"tenant {other}: identity {row.issuer} (audience {row.audience!r}) "
                f"is already trusted by tenant {row.tenant.name}"
            )


def fallback_problems(model: str, fallbacks: Sequence[str], known: Collection[str]) -> list[str]:
    """What is wrong with a model's fallbacks (the admin's form runs the same check)."""
    problems: list[str] = []
    for position, name in enumerate(fallbacks):
        if name == model:
            problems.append("a model cannot be its own fallback")
        elif name not in known:
            problems.append(f"unknown fallback model {name!r}")
        elif name in fallbacks[:position]:
            problems.append(f"fallback model {name!r} is listed twice")
    return problems


def _check_fallbacks(config: GatewayConfig) -> None:
    known = {m.name for m in config.models} | set(PublicModel.objects.values_list("name", flat=True))
    for model in config.models:
        problems = fallback_problems(model.name, model.fallbacks, known)
        if problems:
            raise ConfigError(f"model {model.name}: {problems[0]}")


def _quota_kind(period: str, *, hard: bool) -> str:
    """What identifies a tenant's quota in the file and in the report: ``month hard``."""
    return f"{period} {'hard' if hard else 'soft'}"


def _check_unique(config: GatewayConfig) -> None:
    """A name listed twice would be upserted twice, so the file would never apply cleanly."""
    for section, names in (
        ("providers", [p.name for p in config.providers]),
        ("models", [m.name for m in config.models]),
        ("tiers", [t.name for t in config.tiers]),
        ("tenants", [t.name for t in config.tenants]),
        *((f"tier {t.name}: models", [m.pattern for m in t.models]) for t in config.tiers),
        *(
            (f"tenant {t.name}: quotas", [_quota_kind(q.period, hard=q.hard) for q in t.quotas])
            for t in config.tenants
        ),
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


ModelT = TypeVar("ModelT", bound=models.Model)


def _upsert(
    model: type[ModelT],
    lookup: dict[str, object],
    values: dict[str, object],
    label: str,
    report: ApplyReport,
) -> ModelT:
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


def _apply_tier(spec: TierSpec, report: ApplyReport) -> None:
    values = spec.model_dump(exclude={"name", "models"})
    tier = _upsert(RateTier, {"name": spec.name}, values, f"tier {spec.name}", report)
    keep: set[int] = set()
    for position, line in enumerate(spec.models):
        label = f"tier {spec.name} model line {line.pattern}"
        values = {**line.model_dump(exclude={"pattern"}), "position": position}
        keep.add(_upsert(TierModelLimit, {"tier": tier, "pattern": line.pattern}, values, label, report).pk)
    for stale in TierModelLimit.objects.filter(tier=tier).exclude(pk__in=keep):
        report.deleted.append(f"tier {spec.name} model line {stale.pattern}")
        stale.delete()


def _apply_tenant(spec: TenantSpec, report: ApplyReport) -> None:
    values: dict[str, object] = {
        "display_name": spec.display_name,
        "tier": RateTier.objects.get(name=spec.tier) if spec.tier else None,
        "is_active": spec.is_active,
        "log_content": spec.log_content,
    }
    tenant = _upsert(Tenant, {"name": spec.name}, values, f"tenant {spec.name}", report)
    existing = list(CostQuota.objects.filter(tenant=tenant).order_by("id"))
    keep: set[int] = set()
    for quota in spec.quotas:
        label = f"tenant {spec.name} quota {_quota_kind(quota.period, hard=quota.hard)}"
        match = next(
            (q for q in existing if (q.period, q.hard) == (quota.period, quota.hard) and q.pk not in keep),
            None,
        )
        lookup: dict[str, object] = (
            {"pk": match.pk}
            if match is not None
            else {"tenant": tenant, "period": quota.period, "hard": quota.hard}
        )
        fields = quota.model_dump(include={"limit_usd", "alert_at", "alert_webhook"})
        keep.add(_upsert(CostQuota, lookup, fields, label, report).pk)
    for stale in existing:
        if stale.pk not in keep:
            report.deleted.append(f"tenant {spec.name} quota {_quota_kind(stale.period, hard=stale.hard)}")
            stale.delete()
    identities = spec.identities()
    if identities is not None:
        _apply_identities(tenant, identities, report)


def _apply_identities(tenant: Tenant, specs: list[IdentitySpec], report: ApplyReport) -> None:
    """The tenant's trusted issuers are the file's: upserted by issuer and audience, others deleted."""
    keep: set[int] = set()
    for identity in specs:
        label = f"tenant {tenant.name} identity {identity.issuer} ({identity.audience})"
        values: dict[str, object] = {
            "tenant": tenant,
            "jwks_url": identity.jwks_url,
            "subject_claim": identity.claims.subject,
            "models_claim": identity.claims.models,
            "tier_claim": identity.claims.tier,
            "tier": RateTier.objects.get(name=identity.tier) if identity.tier else None,
        }
        lookup: dict[str, object] = {"issuer": identity.issuer, "audience": identity.audience}
        keep.add(_upsert(TrustedIssuer, lookup, values, label, report).pk)
    for stale in TrustedIssuer.objects.filter(tenant=tenant).exclude(pk__in=keep):
        report.deleted.append(f"tenant {tenant.name} identity {stale.issuer} ({stale.audience})")
        stale.delete()


@transaction.atomic
def apply_config(
    config: GatewayConfig, *, price_source: str = "config", check_prices: bool = True
) -> ApplyReport:
    """Apply ``config`` in one transaction. ``check_prices``: refuse (ConfigError, nothing
    applied) while an enabled deployment has no price (``refuse_unpriced``); a caller applying
    several files in one transaction checks once, after the last."""
    report = ApplyReport()
    for provider_spec in config.providers:
        values = provider_spec.model_dump(exclude={"name"})
        values["base_url"] = provider_spec.base_url.rstrip("/")
        _upsert(Provider, {"name": provider_spec.name}, values, f"provider {provider_spec.name}", report)
    for tier in config.tiers:
        _apply_tier(tier, report)
    for tenant in config.tenants:
        _apply_tenant(tenant, report)
    for spec in config.models:
        public = _upsert(
            PublicModel, {"name": spec.name}, spec.public_model_values(), f"model {spec.name}", report
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
    _apply_prices(config.prices, report, source=price_source)
    if check_prices:
        refuse_unpriced()
    if report.changed:
        bump_revision()
    return report


def refuse_unpriced() -> None:
    """ConfigError naming every enabled deployment that is neither priced nor free."""
    deployments = Deployment.objects.filter(enabled=True).select_related("model", "provider")
    missing = unpriced(deployments.order_by("model__name", "pk"), at=dt.datetime.now(dt.UTC))
    if missing:
        raise ConfigError(unpriced_message([str(d) for d in missing]))


def _apply_prices(specs: list[PriceSpec], report: ApplyReport, *, source: str) -> None:
    if not specs:
        return
    # A free deployment keeps costing nothing: price versions are not applied to it.
    deployments = list(Deployment.objects.filter(free=False).select_related("provider", "model"))
    for spec in specs:
        for deployment in deployments:
            provider = deployment.provider
            if deployment.upstream_model != spec.model or spec.provider not in (provider.name, provider.kind):
                continue
            label = f"{deployment.model.name} -> {provider.name}/{deployment.upstream_model}"
            outcome = price_upsert(
                deployment_id=deployment.pk,
                label=label,
                effective_from=spec.moment(),
                prices={
                    "input_per_million": spec.input_per_million,
                    "output_per_million": spec.output_per_million,
                    "cached_input_per_million": spec.cached_input_per_million,
                    "cache_write_per_million": spec.cache_write_per_million,
                },
                source=source,
            )
            if outcome is not None:
                getattr(report, outcome).append(f"price {label} from {spec.moment():%Y-%m-%d %H:%M}")
