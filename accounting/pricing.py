"""What a request costs: its token counts priced at the deployment's price version in force
when the request started (``DeploymentPrice`` rows with ``effective_from``), or, for a
deployment without versions, at the prices on the deployment itself.

Token rules, the same for every provider kind because the adapters normalise usage to OpenAI's
shape (each adapter's ``usage_from`` and README, "Providers"); each provider kind states its own
(``TokenRules``, passed to ``request_cost``) so a new kind must decide them explicitly:

* ``prompt_tokens`` includes ``cached_tokens`` (cache reads) and ``cache_write_tokens`` (cache
  creation): cached tokens are billed at the cached-input price (the input price when there is
  none), cache writes at the cache-write price where the provider charges one (the input price
  when none is set), the rest at the input price. Nothing is counted twice.
* ``completion_tokens`` includes ``reasoning_tokens`` (OpenAI's reasoning, Anthropic's thinking,
  Gemini's thoughts): reasoning is billed at the output price, once, as part of the completion.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

_MILLION = Decimal(1_000_000)


class TokenRules(Protocol):
    """How a provider kind's usage is billed; the caller passes the serving kind's rules (the
    provider kind records hold them)."""

    @property
    def cache_reads(self) -> bool:
        """Cached prompt tokens are billed at the cached-input price."""
        ...

    @property
    def cache_writes(self) -> bool:
        """The provider reports and charges cache creation separately."""
        ...

    @property
    def reasoning_in_output(self) -> bool:
        """Reasoning tokens are a part of ``completion_tokens``, billed as output."""
        ...


@dataclass(frozen=True, slots=True)
class PriceVersion:
    """Dollars per million tokens from ``effective_from`` on (``id`` None: the deployment's own
    prices, no version row)."""

    id: int | None
    input_per_million: Decimal
    output_per_million: Decimal
    cached_input_per_million: Decimal | None = None
    cache_write_per_million: Decimal | None = None
    effective_from: float = 0.0  # epoch seconds


@dataclass(frozen=True, slots=True)
class PriceTable:
    """Every deployment's versions, oldest first (loaded with the gateway's snapshot)."""

    versions: Mapping[int, tuple[PriceVersion, ...]] = field(default_factory=dict)

    def at(self, deployment_id: int, moment: float) -> PriceVersion | None:
        """The version in force at ``moment`` (the latest that started at or before it)."""
        versions = self.versions.get(deployment_id, ())
        index = bisect.bisect_right(versions, moment, key=lambda v: v.effective_from)
        return versions[index - 1] if index else None


def cost_usd(
    *,
    prompt_tokens: int,
    completion_tokens: int,
    cached_tokens: int,
    input_per_million: Decimal,
    output_per_million: Decimal,
    cached_input_per_million: Decimal | None,
    cache_write_tokens: int = 0,
    cache_write_per_million: Decimal | None = None,
) -> Decimal:
    cached = min(cached_tokens, prompt_tokens)
    written = min(cache_write_tokens, prompt_tokens - cached)
    cached_price = input_per_million if cached_input_per_million is None else cached_input_per_million
    write_price = input_per_million if cache_write_per_million is None else cache_write_per_million
    total = (
        Decimal(prompt_tokens - cached - written) * input_per_million
        + Decimal(cached) * cached_price
        + Decimal(written) * write_price
        + Decimal(completion_tokens) * output_per_million
    )
    return total / _MILLION


def request_cost(
    *,
    rules: TokenRules,
    prices: PriceVersion,
    prompt_tokens: int,
    completion_tokens: int,
    cached_tokens: int,
    cache_write_tokens: int = 0,
    reasoning_tokens: int = 0,
) -> Decimal:
    """A request's cost under its provider kind's token ``rules``."""
    return cost_usd(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens + (0 if rules.reasoning_in_output else reasoning_tokens),
        cached_tokens=cached_tokens if rules.cache_reads else 0,
        input_per_million=prices.input_per_million,
        output_per_million=prices.output_per_million,
        cached_input_per_million=prices.cached_input_per_million,
        cache_write_tokens=cache_write_tokens if rules.cache_writes else 0,
        cache_write_per_million=prices.cache_write_per_million,
    )
