"""What a provider kind is: one frozen record holding everything the gateway needs to know of it
(its admin label, the settings it takes and requires with their defaults, its chat adapter, its
embedder, how its usage is billed, its OpenTelemetry name), and the settings of one provider as
entered, which the record's settings spec is checked against. Each vendor states its record in
its own ``kind`` module; ``registry`` lists them. No Django here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from providers.translation.embeddings import Embedder
from providers.translation.upstream import Adapter, UpstreamCall

# Asks the upstream how many input tokens a request in the kind's own dialect holds.
TokenCounter = Callable[[UpstreamCall], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    """The settings of one provider as entered (admin form or YAML file). ``has_*`` say whether
    a secret is available without revealing it (stored encrypted, or entered now)."""

    kind: str
    base_url: str = ""
    api_version: str = ""
    region: str = ""
    api_key_env: str = ""
    has_api_key: bool = False
    aws_access_key_id: str = ""
    aws_access_key_id_env: str = ""
    aws_secret_access_key_env: str = ""
    aws_session_token_env: str = ""
    has_aws_secret_access_key: bool = False
    aws_credentials_file: str = ""


SettingsCheck = Callable[[ProviderSettings], list[tuple[str, str]]]


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """One entry a kind reads from a provider's ``options``: a number, within its bounds. The
    admin shows it as a field of its own; ``applyconfig`` checks it alike."""

    name: str
    label: str
    help_text: str
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True, slots=True)
class SettingsSpec:
    """What a kind's provider is configured with, beyond what every kind takes (base URL, API key,
    timeout, options).

    ``takes``: the other settings it takes, as ``ProviderSettings`` field names
    (``aws_secret_access_key`` for the write-only secret); setting one for a kind that does not
    take it is refused. ``requires``: the settings that must not be empty, each with its message.
    ``check``: what one setting at a time cannot say, as ``(field, message)`` problems. The
    defaults an empty setting takes: ``default_base_url`` may hold ``{region}`` (without a
    region there is no default). ``options``: the entries of the provider's ``options`` it reads.
    """

    takes: tuple[str, ...] = ()
    requires: tuple[tuple[str, str], ...] = ()
    check: SettingsCheck | None = None
    default_base_url: str = ""
    default_api_version: str = ""
    options: tuple[OptionSpec, ...] = ()

    @property
    def aws_credentials(self) -> bool:
        """The kind signs its requests with AWS credentials (resolved into the catalog)."""
        return "aws_secret_access_key" in self.takes


@dataclass(frozen=True, slots=True)
class TokenRules:
    """How the kind's usage is billed (``accounting.pricing.request_cost`` takes these rules).
    The adapters report usage in OpenAI's shape, so the kinds differ only in what they report."""

    cache_reads: bool  # cached prompt tokens are billed at the cached-input price
    cache_writes: bool  # the provider reports and charges cache creation separately
    reasoning_in_output: bool  # reasoning tokens are a part of completion_tokens, billed as output


@dataclass(frozen=True, slots=True)
class ProviderKind:
    """One provider kind. ``name`` is the value stored in ``Provider.kind`` and written in
    ``applyconfig`` files; ``label`` what the admin shows; ``embedder`` is None for a kind with no
    embeddings API (a 400 names it); ``gen_ai_provider`` is the ``gen_ai.provider.name`` of
    OpenTelemetry's GenAI semantic conventions. ``native_dialects``: the client dialects
    (``NativeRequest.dialect``) its adapter sends upstream as the client wrote them (empty: it
    translates every request); ``token_counter``: how its upstream counts the input tokens of a
    request in such a dialect (None: the gateway counts)."""

    name: str
    label: str
    settings: SettingsSpec
    adapter: Adapter
    embedder: Embedder | None
    token_rules: TokenRules
    gen_ai_provider: str
    native_dialects: frozenset[str]
    token_counter: TokenCounter | None
