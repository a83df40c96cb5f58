"""The ``gemini`` kind: Google's Gemini API (Generative Language, API key)."""

from __future__ import annotations

from providers.kinds.record import ProviderKind, SettingsSpec, TokenRules
from providers.vendors.gemini.adapter import GeminiAdapter
from providers.vendors.gemini.embeddings import embed

GEMINI = ProviderKind(
    name="gemini",
    label="Google Gemini API",
    settings=SettingsSpec(
        takes=("api_version",),
        default_base_url="https://generativelanguage.googleapis.com",
        default_api_version="v1beta",
    ),
    adapter=GeminiAdapter(),
    embedder=embed,
    token_rules=TokenRules(cache_reads=True, cache_writes=False, reasoning_in_output=True),
    gen_ai_provider="gcp.gemini",
    native_dialects=frozenset(),
    token_counter=None,
)
