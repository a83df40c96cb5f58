"""The ``azure`` kind: Azure OpenAI, at the resource endpoint the provider names."""

from __future__ import annotations

from providers.kinds.record import ProviderKind, SettingsSpec, TokenRules
from providers.vendors.azure.adapter import AzureAdapter
from providers.vendors.azure.embeddings import embed

AZURE = ProviderKind(
    name="azure",
    label="Azure OpenAI",
    settings=SettingsSpec(
        takes=("api_version",),
        requires=(
            (
                "base_url",
                "An Azure OpenAI provider needs a base URL: its endpoint, https://RESOURCE.openai.azure.com.",
            ),
        ),
        default_api_version="2024-10-21",
    ),
    adapter=AzureAdapter(),
    embedder=embed,
    token_rules=TokenRules(cache_reads=True, cache_writes=False, reasoning_in_output=True),
    gen_ai_provider="azure.ai.openai",
    native_dialects=frozenset(),
    token_counter=None,
)
