"""The ``openai`` kind: any OpenAI-compatible API, at the base URL the provider names."""

from __future__ import annotations

from providers.kinds.record import ProviderKind, SettingsSpec, TokenRules
from providers.vendors.openai.adapter import OpenAIAdapter
from providers.vendors.openai.embeddings import embed

OPENAI = ProviderKind(
    name="openai",
    label="OpenAI-compatible",
    settings=SettingsSpec(requires=(("base_url", "An OpenAI-compatible provider needs a base URL."),)),
    adapter=OpenAIAdapter(),
    embedder=embed,
    token_rules=TokenRules(cache_reads=True, cache_writes=False, reasoning_in_output=True),
    gen_ai_provider="openai",
    native_dialects=frozenset(),
    token_counter=None,
)
