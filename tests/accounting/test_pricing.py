from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from accounting.pricing import PriceTable, PriceVersion, cost_usd, request_cost
from providers.kinds import registry
from providers.kinds.record import TokenRules


def test_cached_tokens_are_a_subset_billed_at_the_cached_price():
    cost = cost_usd(
        prompt_tokens=1117,
        completion_tokens=46,
        cached_tokens=1024,
        input_per_million=Decimal("2.50"),
        output_per_million=Decimal("10.00"),
        cached_input_per_million=Decimal("1.25"),
    )
    # 93 x 2.50 + 1024 x 1.25 + 46 x 10.00 = 232.5 + 1280 + 460 = 1972.5 per million
    assert cost == Decimal("0.0019725")


def test_without_a_cached_price_cached_tokens_cost_the_input_price():
    cost = cost_usd(
        prompt_tokens=100,
        completion_tokens=0,
        cached_tokens=40,
        input_per_million=Decimal("0.15"),
        output_per_million=Decimal("0.60"),
        cached_input_per_million=None,
    )
    assert cost == Decimal("0.000015")


def test_cached_count_above_prompt_is_clamped():
    cost = cost_usd(
        prompt_tokens=10,
        completion_tokens=0,
        cached_tokens=50,
        input_per_million=Decimal("1"),
        output_per_million=Decimal("1"),
        cached_input_per_million=Decimal("0"),
    )
    assert cost == Decimal("0")


# --- Per-provider token rules (each kind's record, passed to request_cost) -------------------

SONNET = PriceVersion(
    id=None,
    input_per_million=Decimal("3.00"),
    output_per_million=Decimal("15.00"),
    cached_input_per_million=Decimal("0.30"),
    cache_write_per_million=Decimal("3.75"),
)


def test_every_provider_kind_states_its_token_rules():
    from providers.models import Provider

    stated = {k.name for k in registry.KINDS if isinstance(k.token_rules, TokenRules)}
    assert stated == {value for value, _ in Provider._meta.get_field("kind").choices}


# Anthropic usage 12 input + 100 cache creation + 2048 cache read, 9 output; the adapters report
# prompt 2160 (all three), cached 2048, cache writes 100.
WITH_CACHE_WRITES = "0.0011604"  # 12 x 3.00 + 2048 x 0.30 + 100 x 3.75 + 9 x 15.00 = 1160.4
WRITES_AS_INPUT = "0.0010854"  # 112 x 3.00 + 2048 x 0.30 + 9 x 15.00 = 1085.4


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("anthropic", WITH_CACHE_WRITES),
        ("bedrock", WITH_CACHE_WRITES),
        ("openai", WRITES_AS_INPUT),
        ("azure", WRITES_AS_INPUT),
        ("gemini", WRITES_AS_INPUT),
        ("mock", WRITES_AS_INPUT),
    ],
)
def test_cache_writes_cost_the_cache_write_price_where_the_kind_charges_them_else_the_input_price(
    kind, expected
):
    cost = request_cost(
        rules=registry.kind(kind).token_rules,
        prices=SONNET,
        prompt_tokens=2160,
        completion_tokens=9,
        cached_tokens=2048,
        cache_write_tokens=100,
    )
    assert cost == Decimal(expected)


@pytest.mark.parametrize("kind", sorted(registry.NAMES))
def test_reasoning_tokens_are_part_of_the_completion_and_never_billed_twice(kind):
    plain = request_cost(
        rules=registry.kind(kind).token_rules,
        prices=SONNET,
        prompt_tokens=10,
        completion_tokens=500,
        cached_tokens=0,
    )
    with_reasoning = request_cost(
        rules=registry.kind(kind).token_rules,
        prices=SONNET,
        prompt_tokens=10,
        completion_tokens=500,
        cached_tokens=0,
        reasoning_tokens=400,
    )
    assert plain == with_reasoning == Decimal("0.00753")  # 10 x 3 + 500 x 15 = 7530 per million


def test_a_cache_write_count_cannot_exceed_the_uncached_prompt():
    cost = request_cost(
        rules=registry.kind("anthropic").token_rules,
        prices=SONNET,
        prompt_tokens=100,
        completion_tokens=0,
        cached_tokens=80,
        cache_write_tokens=500,
    )
    assert cost == (80 * Decimal("0.30") + 20 * Decimal("3.75")) / 1_000_000


# --- Price versions --------------------------------------------------------------------------


def _version(pk: int, day: int, price: str) -> PriceVersion:
    moment = dt.datetime(2025, 1, day, tzinfo=dt.UTC).timestamp()
    return PriceVersion(
        id=pk, input_per_million=Decimal(price), output_per_million=Decimal(price), effective_from=moment
    )


def test_the_version_in_force_is_the_latest_that_started_at_or_before_the_moment():
    table = PriceTable(versions={7: (_version(1, 1, "1"), _version(2, 10, "2"), _version(3, 20, "3"))})
    at = lambda day, hour=0: table.at(7, dt.datetime(2025, 1, day, hour, tzinfo=dt.UTC).timestamp())  # noqa: E731
    assert at(1).id == 1
    assert at(9, 23).id == 1
    assert at(10).id == 2
    assert at(31).id == 3
    assert table.at(7, dt.datetime(2024, 12, 31, tzinfo=dt.UTC).timestamp()) is None
    assert table.at(8, at(31).effective_from) is None
