from __future__ import annotations

from providers.types import DeploymentConfig, ModelRoute, ProviderConfig
from routing.router import select_deployment

PROVIDER = ProviderConfig(name="p", kind="openai", base_url="http://127.0.0.1:1/v1")


def deployment(id_: int, priority: int) -> DeploymentConfig:
    return DeploymentConfig(id=id_, provider=PROVIDER, upstream_model=f"m{id_}", priority=priority)


def test_model_strategy_picks_the_lowest_priority_then_the_oldest():
    route = ModelRoute(
        name="m",
        created=0,
        owned_by="p",
        deployments=(deployment(5, 2), deployment(9, 1), deployment(3, 1), deployment(1, 3)),
    )
    assert select_deployment(route).id == 3


def test_single_deployment():
    route = ModelRoute(name="m", created=0, owned_by="p", deployments=(deployment(4, 7),))
    assert select_deployment(route).id == 4
