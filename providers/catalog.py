"""Builds the in-process catalog of public models and their deployments from the database."""

from __future__ import annotations

import logging
import os

from django.conf import settings

from providers.files import read_aws_credentials, read_secret, stamp, stamps
from providers.kinds.settings import default_api_version, default_base_url, settings_spec
from providers.models import Deployment, Provider, PublicModel
from providers.secrets import SecretUnreadable, decrypt_secret
from providers.types import (
    AwsCredentials,
    CachePolicy,
    Catalog,
    DeploymentConfig,
    ModelRoute,
    Prices,
    ProviderConfig,
    UpstreamTls,
)

logger = logging.getLogger(__name__)


def _secret(provider: Provider, *, stored: str, env: str, what: str) -> str | None:
    """A stored secret wins over the environment variable; None when neither is set."""
    if stored:
        try:
            return decrypt_secret(stored)
        except SecretUnreadable:
            logger.error("provider %s: stored %s cannot be decrypted", provider.name, what)
            return None
    if env:
        value = os.environ.get(env)
        if not value:
            logger.warning("provider %s: environment variable %s is not set", provider.name, env)
        return value or None
    return None


def _api_key_file(provider: Provider) -> str:
    """The key file in force: named, and no key stored (a stored key wins)."""
    return "" if provider.api_key_encrypted else provider.api_key_file


def _aws_credentials_file(provider: Provider) -> str:
    """The AWS credentials file in force: named, and no secret access key stored."""
    return "" if provider.aws_secret_access_key_encrypted else provider.aws_credentials_file


def resolve_api_key(provider: Provider) -> str | None:
    """A stored key, else the file's (``api_key_file``), else the environment variable's."""
    if path := _api_key_file(provider):
        return read_secret(path, owner=f"provider {provider.name}", what="API key")
    return _secret(provider, stored=provider.api_key_encrypted, env=provider.api_key_env, what="API key")


def _tls(provider: Provider) -> UpstreamTls | None:
    if not (provider.tls_ca_bundle or provider.tls_client_cert):
        return None
    paths = (provider.tls_ca_bundle, provider.tls_client_cert, provider.tls_client_key)
    return UpstreamTls(
        ca_bundle=provider.tls_ca_bundle,
        client_cert=provider.tls_client_cert,
        client_key=provider.tls_client_key,
        stamps=tuple(stamp(path) if path else None for path in paths),
    )


def _watched_files(provider: Provider) -> set[str]:
    """The files whose change reloads the catalog: the key's and the AWS credentials' (unless a
    stored secret wins), TLS's."""
    tls = (provider.tls_ca_bundle, provider.tls_client_cert, provider.tls_client_key)
    return {path for path in (_api_key_file(provider), _aws_credentials_file(provider), *tls) if path}


def resolve_aws_credentials(provider: Provider) -> AwsCredentials | None:
    """Bedrock's SigV4 credentials: the access key id (stored or from its variable), the secret
    access key (stored encrypted or from its variable) and an optional session token; or, unless
    a secret access key is stored, all three from the shared-credentials file."""
    if path := _aws_credentials_file(provider):
        found = read_aws_credentials(path, owner=f"provider {provider.name}")
        if found is None:
            return None
        return AwsCredentials(access_key_id=found[0], secret_access_key=found[1], session_token=found[2])
    key_id = provider.aws_access_key_id or _secret(
        provider, stored="", env=provider.aws_access_key_id_env, what="AWS access key id"
    )
    secret = _secret(
        provider,
        stored=provider.aws_secret_access_key_encrypted,
        env=provider.aws_secret_access_key_env,
        what="AWS secret access key",
    )
    if not key_id or not secret:
        return None
    token = _secret(provider, stored="", env=provider.aws_session_token_env, what="AWS session token")
    return AwsCredentials(access_key_id=key_id, secret_access_key=secret, session_token=token)


def _provider_config(provider: Provider) -> ProviderConfig:
    options = provider.options if isinstance(provider.options, dict) else {}
    delay = options.get("chunk_delay_ms")
    kind = provider.kind
    if kind == "mock" and not isinstance(delay, (int, float)):
        delay = settings.GATEWAY_MOCK_CHUNK_DELAY_MS  # the mock's own default, for every process
    return ProviderConfig(
        name=provider.name,
        kind=kind,
        base_url=(provider.base_url or default_base_url(kind, region=provider.region)).rstrip("/"),
        api_key=resolve_api_key(provider),
        timeout_seconds=provider.timeout_seconds,
        chunk_delay_ms=float(delay) if isinstance(delay, (int, float)) else None,
        api_version=provider.api_version or default_api_version(kind),
        region=provider.region,
        aws=resolve_aws_credentials(provider) if settings_spec(kind).aws_credentials else None,
        tls=_tls(provider),
    )


def load_catalog() -> Catalog:
    enabled = list(Provider.objects.filter(enabled=True))
    # Stamped before reading: a file rotated meanwhile is read again at the next check.
    files = stamps(set().union(*(_watched_files(p) for p in enabled)))
    providers = {p.pk: _provider_config(p) for p in enabled}
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
            strategy=model.strategy,
            fallbacks=tuple(str(name) for name in model.fallbacks if isinstance(name, str)),
            timeout_seconds=model.timeout_seconds,
            cache=(
                CachePolicy(ttl_seconds=model.cache_ttl_seconds, key=model.cache_key)
                if model.cache_ttl_seconds
                else None
            ),
        )
    return Catalog(models=models, secret_files=files)
