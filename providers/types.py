"""Frozen value types shared by the catalog, the adapters and the router. No Django here."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class AwsCredentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(repr=False, default=None)


@dataclass(frozen=True, slots=True)
class UpstreamTls:
    """TLS towards a provider: the CA bundle its certificate is checked against (empty: the
    system's), and a client certificate and key for mutual TLS (PEM file paths)."""

    ca_bundle: str = ""
    client_cert: str = ""
    client_key: str = ""
    # The files' stamps when the catalog was loaded: a rotated file makes another value, so
    # another connection pool (``routing.router``).
    stamps: tuple[tuple[int, int, int] | None, ...] = ()


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """One provider as the adapters see it. ``base_url`` and ``api_version`` already hold the
    kind's defaults when the row left them empty (``providers.kinds.settings``)."""

    name: str
    kind: str
    base_url: str
    api_key: str | None = field(repr=False, default=None)
    timeout_seconds: float | None = None
    chunk_delay_ms: float | None = None
    api_version: str = ""
    region: str = ""
    aws: AwsCredentials | None = field(repr=False, default=None)
    tls: UpstreamTls | None = None

    def secrets(self) -> tuple[str | None, ...]:
        """What must never reach a client or a log line (for ``errors.redact``)."""
        aws = self.aws
        aws_secrets = (aws.secret_access_key, aws.session_token) if aws is not None else ()
        return (self.api_key, self.base_url, *aws_secrets)


@dataclass(frozen=True, slots=True)
class Prices:
    """US dollars per million tokens; cached input falls back to the input price."""

    input_per_million: Decimal = Decimal("0")
    output_per_million: Decimal = Decimal("0")
    cached_input_per_million: Decimal | None = None


@dataclass(frozen=True, slots=True)
class DeploymentConfig:
    id: int
    provider: ProviderConfig
    upstream_model: str
    priority: int = 1
    weight: int = 1
    prices: Prices = Prices()


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """A model's response cache: entries live ``ttl_seconds``; ``key`` is ``full_request`` or
    ``messages_only`` (which request fields make up the cache key)."""

    ttl_seconds: int
    key: str = "full_request"


@dataclass(frozen=True, slots=True)
class ModelRoute:
    """A public model: its deployments and how the router chooses among them (``strategy``, one of
    ``routing.strategies.STRATEGIES``), the models tried after it (``fallbacks``), the total
    deadline (``timeout_seconds``, None: the gateway default) and its response cache."""

    name: str
    created: int
    owned_by: str
    deployments: tuple[DeploymentConfig, ...]
    strategy: str = "model"
    fallbacks: tuple[str, ...] = ()
    timeout_seconds: float | None = None
    cache: CachePolicy | None = None


@dataclass(frozen=True, slots=True)
class Catalog:
    models: dict[str, ModelRoute]
    # The files secrets were read from, with their stamps when read (``providers.files``): the
    # configuration watcher reloads the catalog when one changes.
    secret_files: dict[str, tuple[int, int, int] | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_tokens: int = 0  # part of prompt_tokens, where the provider reports cache creation

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


# The dialect of Anthropic's Messages API (``/v1/messages``), as a ``NativeRequest`` names it.
ANTHROPIC_MESSAGES = "messages"


@dataclass(frozen=True, slots=True)
class NativeRequest:
    """A client's request in a vendor's own wire format (``dialect``), kept beside its internal
    (OpenAI chat) translation, so an adapter that speaks the dialect sends it as the client
    wrote it. ``content`` is the body's bytes as sent, ``body`` those bytes parsed, ``headers``
    the client's headers that vendor reads (lower-case names), ``untranslatable`` the
    parameters the translation cannot carry: a deployment that does not speak the dialect
    refuses them (``providers.kinds.registry.native_for``)."""

    dialect: str
    body: dict[str, object]
    content: bytes
    headers: tuple[tuple[str, str], ...] = ()
    untranslatable: tuple[str, ...] = ()

    @property
    def streamed(self) -> bool:
        return self.body.get("stream") is True


@dataclass(frozen=True, slots=True)
class Completion:
    """A non-streaming answer: the OpenAI-shaped body to return and the usage it reported;
    ``native``, the upstream's own answer when the request was sent in its dialect."""

    body: bytes
    usage: Usage | None
    native: bytes | None = None


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One upstream stream event, already OpenAI-shaped.

    ``payload`` is the JSON to send as one SSE ``data:`` line (None: nothing to relay),
    ``usage_only`` marks the final usage chunk, ``text`` is the content it carried (for
    counting tokens when a stream ends early), ``error`` marks an in-stream error object.
    ``native`` is set on the events of a stream the upstream sent in the request's own dialect:
    the SSE bytes of the vendor event this one was translated from (on the first event made
    from it; ``b""`` on the others), so the client gets the vendor's events as they were."""

    payload: bytes | None
    usage: Usage | None = None
    usage_only: bool = False
    text: str = ""
    error: bool = False
    native: bytes | None = None
