"""Routing strategies: pure functions from a model's deployments and a snapshot of their health to
the order in which to try them. No I/O, no clock, no randomness of their own: the caller passes
the round-robin turn and uniform draws in ``Snapshot``, so each choice is reproducible in tests.

Every strategy skips deployments the snapshot marks unavailable (breaker open). The first
deployment of the returned order serves the request; the rest are what the router falls back to
within the model, by priority, when every attempt on the first failed (``model`` returns only
the one deployment: it never falls back within the model)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

from providers.types import DeploymentConfig

MODEL: Final = "model"
ROUND_ROBIN: Final = "round_robin"
WEIGHTED: Final = "weighted"
LEAST_LATENCY: Final = "least_latency"
COST_OPTIMIZED: Final = "cost_optimized"
FALLBACK: Final = "fallback"
STRATEGIES: Final = (MODEL, ROUND_ROBIN, WEIGHTED, LEAST_LATENCY, COST_OPTIMIZED, FALLBACK)


@dataclass(frozen=True, slots=True)
class DeploymentHealth:
    """What the router knows of one deployment: its moving-average upstream latency (None: not
    measured yet) and whether it may take traffic (False while its breaker is open)."""

    latency_ms: float | None = None
    available: bool = True


HEALTHY: Final = DeploymentHealth()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The inputs of one routing decision.

    ``turn`` is the model's round-robin counter; ``draw`` and ``explore`` are independent uniform
    numbers in [0, 1); ``prompt_tokens`` and ``completion_tokens`` estimate the request (for
    ``cost_optimized``); ``exploration`` is the share of ``least_latency`` picks made at random so
    that a deployment that was slow is measured again once it recovers."""

    health: Mapping[int, DeploymentHealth] = field(default_factory=dict)
    turn: int = 0
    draw: float = 0.0
    explore: float = 1.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    exploration: float = 0.1

    def available(self, deployment: DeploymentConfig) -> bool:
        return self.health.get(deployment.id, HEALTHY).available

    def latency(self, deployment: DeploymentConfig) -> float | None:
        return self.health.get(deployment.id, HEALTHY).latency_ms


def by_priority(deployments: Sequence[DeploymentConfig]) -> list[DeploymentConfig]:
    return sorted(deployments, key=lambda d: (d.priority, d.id))


def estimated_cost(deployment: DeploymentConfig, *, prompt_tokens: int, completion_tokens: int) -> Decimal:
    """Dollars this deployment would charge for the estimated request (cache discounts ignored)."""
    prices = deployment.prices
    return (
        Decimal(prompt_tokens) * prices.input_per_million
        + Decimal(completion_tokens) * prices.output_per_million
    ) / Decimal(1_000_000)


def _first_then_priority(
    first: DeploymentConfig, ordered: list[DeploymentConfig]
) -> tuple[DeploymentConfig, ...]:
    return (first, *(d for d in ordered if d.id != first.id))


def _pick_model(ordered: list[DeploymentConfig], snapshot: Snapshot) -> tuple[DeploymentConfig, ...]:
    return tuple(ordered[:1])


def _pick_fallback(ordered: list[DeploymentConfig], snapshot: Snapshot) -> tuple[DeploymentConfig, ...]:
    return tuple(ordered)


def _pick_round_robin(ordered: list[DeploymentConfig], snapshot: Snapshot) -> tuple[DeploymentConfig, ...]:
    start = snapshot.turn % len(ordered)
    return tuple(ordered[start:] + ordered[:start])


def weighted_choice(ordered: Sequence[DeploymentConfig], draw: float) -> DeploymentConfig:
    """The deployment ``draw`` (uniform in [0, 1)) lands on, each taking a share of [0, 1)
    proportional to its weight; all weights zero: the first."""
    total = sum(d.weight for d in ordered)
    if total <= 0:
        return ordered[0]
    point = draw * total
    for deployment in ordered:
        if point < deployment.weight:
            return deployment
        point -= deployment.weight
    return next(d for d in reversed(ordered) if d.weight > 0)


def _pick_weighted(ordered: list[DeploymentConfig], snapshot: Snapshot) -> tuple[DeploymentConfig, ...]:
    return _first_then_priority(weighted_choice(ordered, snapshot.draw), ordered)


def _pick_least_latency(ordered: list[DeploymentConfig], snapshot: Snapshot) -> tuple[DeploymentConfig, ...]:
    if snapshot.explore < snapshot.exploration:
        first = ordered[min(int(snapshot.draw * len(ordered)), len(ordered) - 1)]
    else:
        # Not yet measured counts as fastest: a new deployment gets measured straight away.
        first = min(ordered, key=lambda d: snapshot.latency(d) or 0.0)
    return _first_then_priority(first, ordered)


def _pick_cost_optimized(ordered: list[DeploymentConfig], snapshot: Snapshot) -> tuple[DeploymentConfig, ...]:
    def cost(deployment: DeploymentConfig) -> Decimal:
        return estimated_cost(
            deployment, prompt_tokens=snapshot.prompt_tokens, completion_tokens=snapshot.completion_tokens
        )

    cheapest = sorted(ordered, key=cost)  # stable: ties stay in priority order
    return tuple(cheapest)


_PICKERS: Final[dict[str, Callable[[list[DeploymentConfig], Snapshot], tuple[DeploymentConfig, ...]]]] = {
    MODEL: _pick_model,
    ROUND_ROBIN: _pick_round_robin,
    WEIGHTED: _pick_weighted,
    LEAST_LATENCY: _pick_least_latency,
    COST_OPTIMIZED: _pick_cost_optimized,
    FALLBACK: _pick_fallback,
}


def order_deployments(
    strategy: str, deployments: Sequence[DeploymentConfig], snapshot: Snapshot
) -> tuple[DeploymentConfig, ...]:
    """The available deployments in the order to try them (empty: none is available).

    Raises ``ValueError`` for an unknown strategy (the admin and ``applyconfig`` only accept
    ``STRATEGIES``)."""
    picker = _PICKERS.get(strategy)
    if picker is None:
        raise ValueError(f"unknown routing strategy {strategy!r}")
    ordered = by_priority([d for d in deployments if snapshot.available(d)])
    if not ordered:
        return ()
    return picker(ordered, snapshot)
