from __future__ import annotations

import pytest

from providers.errors import UpstreamHTTPError
from providers.http import create_http_client
from providers.types import Catalog, DeploymentConfig, ModelRoute, ProviderConfig
from routing.breaker import BreakerBoard, BreakerPolicy
from routing.retry import RetryPolicy
from routing.router import Router
from tests.fakes.openai_upstream import ErrorReply, FakeOpenAIUpstream

PROVIDER = ProviderConfig(name="p", kind="openai", base_url="http://127.0.0.1:1/v1")


def deployment(id_: int, priority: int) -> DeploymentConfig:
    return DeploymentConfig(id=id_, provider=PROVIDER, upstream_model=f"m{id_}", priority=priority)


async def planned(route: ModelRoute) -> list[int]:
    client = create_http_client(max_connections=1, timeout_seconds=5, connect_timeout=1)
    router = Router(client=client, default_timeout=5)
    try:
        return [d.id for d in router.plan(route).candidates]
    finally:
        await router.aclose()


async def test_model_strategy_plans_only_the_lowest_priority_then_the_oldest():
    route = ModelRoute(
        name="m",
        created=0,
        owned_by="p",
        deployments=(deployment(5, 2), deployment(9, 1), deployment(3, 1), deployment(1, 3)),
    )
    assert await planned(route) == [3]


async def test_single_deployment():
    route = ModelRoute(name="m", created=0, owned_by="p", deployments=(deployment(4, 7),))
    assert await planned(route) == [4]


async def _no_sleep(_seconds: float) -> None:
    return None


@pytest.fixture
def upstream():
    fake = FakeOpenAIUpstream().start()
    yield fake
    fake.stop()


def primary_and_spare(upstream: FakeOpenAIUpstream) -> Catalog:
    """Model "m" on deployment 1, falling back to model "b" on deployment 2, one upstream."""
    a = ProviderConfig(name="a", kind="openai", base_url=upstream.base_url, api_key="k")
    primary = DeploymentConfig(id=1, provider=a, upstream_model="primary")
    spare = DeploymentConfig(id=2, provider=a, upstream_model="spare")
    return Catalog(
        models={
            "m": ModelRoute(name="m", created=0, owned_by="a", deployments=(primary,), fallbacks=("b",)),
            "b": ModelRoute(name="b", created=0, owned_by="a", deployments=(spare,)),
        }
    )


async def test_every_upstream_call_is_recorded_with_its_retry_number_and_fallback_flag(upstream):
    catalog = primary_and_spare(upstream)
    router = Router(
        client=create_http_client(max_connections=4, timeout_seconds=5, connect_timeout=1),
        default_timeout=5,
        retry=RetryPolicy(retries=1),
        sleep=_no_sleep,
    )
    upstream.enqueue(*[ErrorReply(503, "busy", type="server_error")] * 2, ErrorReply(400, "bad"))
    route_plan = router.plan(catalog.models["m"], catalog=catalog)
    assert route_plan.primary == 1
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(UpstreamHTTPError) as raised:
        await router.complete(route_plan, body, request_id="req_1")
    await router.aclose()
    assert raised.value.status == 400
    assert [(t.deployment.id, t.retry, t.fallback, t.status, t.error_type) for t in route_plan.calls] == [
        (1, 0, False, 502, "upstream_error"),
        (1, 1, False, 502, "upstream_error"),
        (2, 0, True, 400, "invalid_request_error"),
    ]
    assert route_plan.retries == 1
    assert route_plan.fell_back is True
    assert route_plan.call_count == 3
    assert all(t.seconds >= 0 for t in route_plan.calls)
    assert route_plan.upstream_seconds == pytest.approx(sum(t.seconds for t in route_plan.calls))


async def test_a_fallback_model_stays_a_fallback_when_the_model_itself_is_unavailable(upstream):
    catalog = primary_and_spare(upstream)
    router = Router(
        client=create_http_client(max_connections=4, timeout_seconds=5, connect_timeout=1),
        default_timeout=5,
        breakers=BreakerBoard(BreakerPolicy(failure_threshold=1)),
    )
    router.breakers.failed(1)  # open: the model's own deployment takes no traffic
    route_plan = router.plan(catalog.models["m"], catalog=catalog)
    assert [d.id for d in route_plan.candidates] == [2]
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    await router.complete(route_plan, body, request_id="req_1")
    await router.aclose()
    assert [(t.deployment.id, t.retry, t.fallback, t.status) for t in route_plan.calls] == [(2, 0, True, 200)]
    assert route_plan.fell_back is True
    assert len(upstream.requests) == 1


def _rotating_pair(name: str, first: int, fallbacks: tuple[str, ...] = ()) -> ModelRoute:
    return ModelRoute(
        name=name,
        created=0,
        owned_by="p",
        strategy="round_robin",
        deployments=(deployment(first, 1), deployment(first + 1, 1)),
        fallbacks=fallbacks,
    )


async def test_a_fallback_planned_just_in_case_does_not_move_its_models_rotation():
    catalog = Catalog(models={"m": _rotating_pair("m", 1, fallbacks=("b",)), "b": _rotating_pair("b", 3)})
    router = Router(
        client=create_http_client(max_connections=1, timeout_seconds=5, connect_timeout=1),
        default_timeout=5,
        breakers=BreakerBoard(BreakerPolicy(failure_threshold=1)),
    )
    try:

        def plan(name: str) -> list[int]:
            return [d.id for d in router.plan(catalog.models[name], catalog=catalog).candidates]

        plans = []
        for _ in range(4):  # requests for "m" and for "b" alternate
            plans += [plan("m"), plan("b")]
        # "b" rotates on its own requests only; as m's fallback it is planned from its current turn
        assert plans == [
            [1, 2, 3, 4],
            [3, 4],
            [2, 1, 4, 3],
            [4, 3],
            [1, 2, 3, 4],
            [3, 4],
            [2, 1, 4, 3],
            [4, 3],
        ]
        router.breakers.failed(1)
        router.breakers.failed(2)  # "m" has nothing available: its fallback serves and takes turns
        assert [plan("m"), plan("m"), plan("m")] == [[3, 4], [4, 3], [3, 4]]
    finally:
        await router.aclose()
