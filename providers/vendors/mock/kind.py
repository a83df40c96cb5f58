"""The ``mock`` kind: the built-in provider that answers in-process, with no network and no key."""

from __future__ import annotations

from providers.kinds.record import OptionSpec, ProviderKind, SettingsSpec, TokenRules
from providers.vendors.mock.adapter import MockAdapter
from providers.vendors.mock.embeddings import embed

MOCK = ProviderKind(
    name="mock",
    label="Built-in mock",
    settings=SettingsSpec(
        options=(
            OptionSpec(
                name="chunk_delay_ms",
                label="Chunk delay (ms)",
                help_text="Pause between streamed chunks; empty: GATEWAY_MOCK_CHUNK_DELAY_MS.",
                minimum=0,
                maximum=60_000,
            ),
        )
    ),
    adapter=MockAdapter(),
    embedder=embed,
    token_rules=TokenRules(cache_reads=True, cache_writes=False, reasoning_in_output=True),
    gen_ai_provider="mock",
    native_dialects=frozenset(),
    token_counter=None,
)
