from __future__ import annotations

from decimal import Decimal

from accounting.pricing import cost_usd


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
