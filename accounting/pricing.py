"""Cost of one request from its token counts and the deployment's per-million prices.

Cached prompt tokens are a subset of prompt tokens (OpenAI's convention): they are billed at
the cached-input price, or at the input price when the deployment has none."""

from __future__ import annotations

from decimal import Decimal

_MILLION = Decimal(1_000_000)


def cost_usd(
    *,
    prompt_tokens: int,
    completion_tokens: int,
    cached_tokens: int,
    input_per_million: Decimal,
    output_per_million: Decimal,
    cached_input_per_million: Decimal | None,
) -> Decimal:
    cached = min(cached_tokens, prompt_tokens)
    cached_price = input_per_million if cached_input_per_million is None else cached_input_per_million
    total = (
        Decimal(prompt_tokens - cached) * input_per_million
        + Decimal(cached) * cached_price
        + Decimal(completion_tokens) * output_per_million
    )
    return total / _MILLION
