from __future__ import annotations

import random
from collections import Counter
from decimal import Decimal

import pytest

from providers.types import DeploymentConfig, Prices, ProviderConfig
from routing.strategies import (
    STRATEGIES,
    DeploymentHealth,
    Snapshot,
    order_deployments,
    weighted_choice,
)

PROVIDER = ProviderConfig(name="p", kind="openai", base_url="http://127.0.0.1:1/v1")


def dep(id_: int, *, priority: int = 1, weight: int = 1, inp: str = "0", out: str = "0") -> DeploymentConfig:
    return DeploymentConfig(
        id=id_,
        provider=PROVIDER,
        upstream_model=f"m{id_}",
        priority=priority,
        weight=weight,
        prices=Prices(input_per_million=Decimal(inp), output_per_million=Decimal(out)),
    )


A, B, C = dep(1, priority=1, weight=3), dep(2, priority=2, weight=1), dep(3, priority=3, weight=0)


def ids(order: tuple[DeploymentConfig, ...]) -> list[int]:
    return [d.id for d in order]


def test_model_serves_only_the_highest_priority_available():
    assert ids(order_deployments("model", (C, B, A), Snapshot())) == [1]
    down = Snapshot(health={1: DeploymentHealth(available=False)})
    assert ids(order_deployments("model", (C, B, A), down)) == [2]


def test_fallback_is_the_priority_chain_without_open_deployments():
    assert ids(order_deployments("fallback", (C, B, A), Snapshot())) == [1, 2, 3]
    down = Snapshot(health={2: DeploymentHealth(available=False)})
    assert ids(order_deployments("fallback", (C, B, A), down)) == [1, 3]


def test_round_robin_rotates_with_the_turn():
    firsts = [order_deployments("round_robin", (A, B, C), Snapshot(turn=t))[0].id for t in range(6)]
    assert firsts == [1, 2, 3, 1, 2, 3]
    assert ids(order_deployments("round_robin", (A, B, C), Snapshot(turn=1))) == [2, 3, 1]


def test_weighted_split_is_exact_over_evenly_spread_draws():
    picks = Counter(weighted_choice((A, B, C), (i + 0.5) / 4000).id for i in range(4000))
    assert picks == {1: 3000, 2: 1000}


def test_weighted_split_with_a_seeded_rng_is_within_two_percent():
    rng = random.Random(1234)
    picks = Counter(
        order_deployments("weighted", (A, B), Snapshot(draw=rng.random()))[0].id for _ in range(4000)
    )
    assert abs(picks[1] / 4000 - 0.75) < 0.02


def test_weighted_falls_back_by_priority_and_skips_open():
    assert ids(order_deployments("weighted", (A, B, C), Snapshot(draw=0.9))) == [2, 1, 3]
    down = Snapshot(draw=0.1, health={1: DeploymentHealth(available=False)})
    assert ids(order_deployments("weighted", (A, B, C), down))[0] == 2


def test_least_latency_prefers_the_fastest_and_measures_the_unmeasured():
    health = {1: DeploymentHealth(latency_ms=900.0), 2: DeploymentHealth(latency_ms=50.0)}
    assert ids(order_deployments("least_latency", (A, B), Snapshot(health=health))) == [2, 1]
    assert order_deployments("least_latency", (A, B, C), Snapshot(health=health))[0].id == 3


def test_least_latency_explores_a_share_of_picks():
    health = {1: DeploymentHealth(latency_ms=900.0), 2: DeploymentHealth(latency_ms=50.0)}
    explored = Snapshot(health=health, explore=0.05, draw=0.1)
    assert order_deployments("least_latency", (A, B), explored)[0].id == 1
    rng = random.Random(7)
    picks = Counter(
        order_deployments(
            "least_latency", (A, B), Snapshot(health=health, draw=rng.random(), explore=rng.random())
        )[0].id
        for _ in range(4000)
    )
    # 10% exploration split evenly: the slow one gets about 5%.
    assert 0.03 < picks[1] / 4000 < 0.07


def test_cost_optimized_orders_by_estimated_cost():
    cheap_out = dep(4, priority=1, inp="1", out="0.1")
    cheap_in = dep(5, priority=2, inp="0.1", out="1")
    long_prompt = Snapshot(prompt_tokens=10_000, completion_tokens=10)
    long_answer = Snapshot(prompt_tokens=10, completion_tokens=10_000)
    assert ids(order_deployments("cost_optimized", (cheap_out, cheap_in), long_prompt)) == [5, 4]
    assert ids(order_deployments("cost_optimized", (cheap_out, cheap_in), long_answer)) == [4, 5]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_skips_open_deployments_and_may_return_none(strategy: str):
    all_down = Snapshot(health={1: DeploymentHealth(available=False), 2: DeploymentHealth(available=False)})
    assert order_deployments(strategy, (A, B), all_down) == ()
    one_down = Snapshot(health={1: DeploymentHealth(available=False)}, draw=0.1)
    assert ids(order_deployments(strategy, (A, B), one_down)) == [2]


def test_unknown_strategy():
    with pytest.raises(ValueError):
        order_deployments("fastest", (A,), Snapshot())
