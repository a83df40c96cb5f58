"""The ``anthropic`` kind: Anthropic's Messages API, which a Messages client's request is sent
to as written, and which counts its tokens. It has no embeddings API."""

from __future__ import annotations

from providers.kinds.record import ProviderKind, SettingsSpec, TokenRules
from providers.types import ANTHROPIC_MESSAGES
from providers.vendors.anthropic.adapter import AnthropicAdapter
from providers.vendors.anthropic.count import count_input_tokens

ANTHROPIC = ProviderKind(
    name="anthropic",
    label="Anthropic Messages API",
    settings=SettingsSpec(
        takes=("api_version",),
        default_base_url="https://api.anthropic.com",
        default_api_version="2023-06-01",
    ),
    adapter=AnthropicAdapter(),
    embedder=None,
    token_rules=TokenRules(cache_reads=True, cache_writes=True, reasoning_in_output=True),
    gen_ai_provider="anthropic",
    native_dialects=frozenset({ANTHROPIC_MESSAGES}),
    token_counter=count_input_tokens,
)
