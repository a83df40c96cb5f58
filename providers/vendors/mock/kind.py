"""The ``mock`` kind: the built-in provider that answers in-process, with no network and no key."""

from __future__ import annotations

from providers.kinds.record import ProviderKind, SettingsSpec, TokenRules
from providers.vendors.mock.adapter import MockAdapter
from providers.vendors.mock.embeddings import embed

MOCK = ProviderKind(
    name="mock",
    label="Built-in mock",
    settings=SettingsSpec(),
    adapter=MockAdapter(),
    embedder=embed,
    token_rules=TokenRules(cache_reads=True, cache_writes=False, reasoning_in_output=True),
    gen_ai_provider="mock",
    native_dialects=frozenset(),
    token_counter=None,
)
