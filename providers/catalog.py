"""Builds the in-process catalog of public models and their deployments from the database."""

from __future__ import annotations

import logging
import os

from providers.models import Deployment, Provider, PublicModel
from providers.secrets import SecretUnreadable, decrypt_secret
from providers.types import Catalog, DeploymentConfig, ModelRoute, Prices, ProviderConfig

logger = logging.getLogger(__name__)


def resolve_api_key(provider: Provider) -> str | None:
    """A stored secret wins over the environment variable; None when neither is set."""
    if provider.api_key_encrypted:
        try:
            return decrypt_secret(provider.api_key_encrypted)
        except SecretUnreadable:
            logger.error("provider %s: stored API key cannot be decrypted", provider.name)
            return None
    if provider.api_key_env:
        value = os.environ.get(provider.api_key_env)
        if not value:
            logger.warning(
                "provider %s: environment variable %s is not set", provider.name, provider.api_key_env
            )
        return value or None
    return None


def _provider_config(provider: Provider) -> ProviderConfig:
    options = provider.options if isinstance(provider.options, dict) else {}
    delay = options.get("chunk_delay_ms")
    return ProviderConfig(
        name=provider.name,
        kind=provider.kind,
        base_url=provider.base_url.rstrip("/"),
        api_key=resolve_api_key(provider),
        timeout_seconds=provider.timeout_seconds,
        chunk_delay_ms=float(delay) if isinstance(delay, (int, float)) else None,
    )


def load_catalog() -> Catalog:
    providers = {p.pk: _provider_config(p) for p in Provider.objects.filter(enabled=True)}
    grouped: dict[int, list[DeploymentConfig]] = {}
    deployments = Deployment.objects.filter(enabled=True, model__enabled=True).order_by("priority", "pk")
    for row in deployments:
        provider = providers.get(row.provider_id)
        if provider is None:
            continue
        grouped.setdefault(row.model_id, []).append(
            DeploymentConfig(
                id=row.pk,
                provider=provider,
                upstream_model=row.upstream_model,
                priority=row.priority,
                weight=row.weight,
                prices=Prices(
                    input_per_million=row.input_per_million,
                    output_per_million=row.output_per_million,
                    cached_input_per_million=row.cached_input_per_million,
                ),
            )
        )
    models: dict[str, ModelRoute] = {}
    for model in PublicModel.objects.filter(enabled=True):
        routes = tuple(grouped.get(model.pk, ()))
        if not routes:
            continue
        models[model.name] = ModelRoute(
            name=model.name,
            created=int(model.created_at.timestamp()),
            owned_by=routes[0].provider.name,
            deployments=routes,
        )
    return Catalog(models=models)
