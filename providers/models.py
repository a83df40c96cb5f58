"""Upstream accounts (providers), the public model names clients send, and the deployments
that serve each public model with their prices."""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models

from providers.kinds.registry import KINDS

PRICE_FIELD = {"max_digits": 12, "decimal_places": 6, "validators": [MinValueValidator(Decimal("0"))]}


class Provider(models.Model):
    name = models.SlugField(max_length=64, unique=True)
    # The stored value is the kind's name; the choices and their labels are the registry's.
    kind = models.CharField(max_length=20, choices=[(k.name, k.label) for k in KINDS])
    base_url = models.URLField(
        blank=True,
        help_text="openai: e.g. https://api.openai.com/v1; azure: the resource endpoint, e.g. "
        "https://myres.openai.azure.com; anthropic, gemini, bedrock: empty for the public endpoint.",
    )
    api_version = models.CharField(
        max_length=40,
        blank=True,
        help_text="azure: the api-version query (default 2024-10-21); anthropic: the "
        "anthropic-version header (default 2023-06-01); gemini: the API version path (default v1beta).",
    )
    region = models.CharField(max_length=40, blank=True, help_text="bedrock: the AWS region, e.g. us-east-1.")
    aws_access_key_id = models.CharField(
        max_length=128, blank=True, help_text="bedrock: the AWS access key id (not a secret)."
    )
    aws_access_key_id_env = models.CharField(
        max_length=100, blank=True, help_text="bedrock: environment variable holding the access key id."
    )
    aws_secret_access_key_env = models.CharField(
        max_length=100, blank=True, help_text="bedrock: environment variable holding the secret access key."
    )
    aws_session_token_env = models.CharField(
        max_length=100,
        blank=True,
        help_text="bedrock: environment variable holding a session token (temporary credentials).",
    )
    aws_secret_access_key_encrypted = models.TextField(blank=True, editable=False)
    aws_credentials_file = models.CharField(
        max_length=500,
        blank=True,
        help_text="bedrock: path of an AWS shared-credentials file (a mounted secret, Vault Agent): "
        "the access key id, secret access key and session token of its [default] profile (or its only "
        "one); re-read when it changes.",
    )
    api_key_env = models.CharField(
        max_length=100,
        blank=True,
        help_text="Environment variable holding the upstream API key in every gateway process.",
    )
    api_key_encrypted = models.TextField(blank=True, editable=False)
    api_key_file = models.CharField(
        max_length=500,
        blank=True,
        help_text="Path of a file holding the upstream API key (a mounted secret); re-read when it changes.",
    )
    tls_ca_bundle = models.CharField(
        max_length=500,
        blank=True,
        help_text="PEM file of the CAs the upstream's certificate is checked against.",
    )
    tls_client_cert = models.CharField(
        max_length=500, blank=True, help_text="PEM file of the client certificate (mTLS), chain included."
    )
    tls_client_key = models.CharField(
        max_length=500, blank=True, help_text="PEM file of the client certificate's private key (mTLS)."
    )
    timeout_seconds = models.FloatField(
        null=True, blank=True, help_text="Total upstream timeout; empty uses the gateway default."
    )
    options = models.JSONField(default=dict, blank=True, help_text="Kind-specific settings.")
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def has_stored_key(self) -> bool:
        return bool(self.api_key_encrypted)

    @property
    def has_stored_aws_secret(self) -> bool:
        return bool(self.aws_secret_access_key_encrypted)


class PublicModel(models.Model):
    """A model name clients send (``model`` in the request), and how requests for it are routed
    among its deployments (``routing.strategies``), retried, cached and passed on to fallbacks."""

    class Strategy(models.TextChoices):
        MODEL = "model", "Highest priority deployment"
        ROUND_ROBIN = "round_robin", "Round robin"
        WEIGHTED = "weighted", "Weighted random"
        LEAST_LATENCY = "least_latency", "Least latency"
        COST_OPTIMIZED = "cost_optimized", "Cheapest"
        FALLBACK = "fallback", "Fallback chain (priority order)"

    class CacheKey(models.TextChoices):
        FULL_REQUEST = "full_request", "Full request"
        MESSAGES_ONLY = "messages_only", "Messages only"

    name = models.CharField(max_length=200, unique=True)
    description = models.CharField(max_length=500, blank=True)
    strategy = models.CharField(max_length=20, choices=Strategy.choices, default=Strategy.MODEL)
    fallbacks = models.JSONField(
        default=list,
        blank=True,
        help_text="Other public model names tried, in order, when every deployment of this one failed.",
    )
    timeout_seconds = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.1)],
        help_text="Total deadline of a request, retries and fallbacks included; empty: the gateway default.",
    )
    cache_ttl_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="Cache eligible answers this long; empty disables the cache."
    )
    cache_key = models.CharField(max_length=20, choices=CacheKey.choices, default=CacheKey.FULL_REQUEST)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "model"

    def __str__(self) -> str:
        return self.name


class Deployment(models.Model):
    """One way to serve a public model: a provider, the upstream model name, and its prices in
    US dollars per million tokens; or ``free``, served at no cost by declaration (the built-in
    mock, a self-hosted model). ``applyconfig`` and the admin refuse a deployment that is
    neither priced nor free."""

    model = models.ForeignKey(PublicModel, on_delete=models.CASCADE, related_name="deployments")
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="deployments")
    upstream_model = models.CharField(max_length=200)
    priority = models.PositiveIntegerField(default=1, help_text="Lower is tried first.")
    weight = models.PositiveIntegerField(default=1)
    input_per_million = models.DecimalField(default=Decimal("0"), **PRICE_FIELD)  # type: ignore[arg-type]
    output_per_million = models.DecimalField(default=Decimal("0"), **PRICE_FIELD)  # type: ignore[arg-type]
    cached_input_per_million = models.DecimalField(null=True, blank=True, **PRICE_FIELD)  # type: ignore[arg-type]
    free = models.BooleanField(
        default=False,
        help_text="Served at no cost by declaration: no price needed, every request costs $0.",
    )
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model__name", "priority", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["model", "provider", "upstream_model"], name="uniq_deployment")
        ]

    def __str__(self) -> str:
        return f"{self.model.name} -> {self.provider.name}/{self.upstream_model}"
