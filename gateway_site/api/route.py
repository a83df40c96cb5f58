"""The route stage: the deployments to try (the model's strategy, breakers, fallbacks) and
the upstream call through the router and the provider adapters, streamed or not; a normal answer
is stored in the response cache."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.http import HttpResponseBase

from gateway_site.api.cache import ChatCache
from gateway_site.api.dialects.base import Dialect
from gateway_site.api.estimate import Estimate
from gateway_site.api.exchange import Exchange
from gateway_site.api.outcome import Outcome
from gateway_site.api.parse.chat import ChatRequest
from gateway_site.api.responses import json_response
from gateway_site.api.settle import Settling
from gateway_site.api.stream import streaming_response
from gateway_site.runtime.process import get_runtime
from gateway_site.runtime.snapshot import ConfigSnapshot
from providers.types import ModelRoute
from routing.router import NoDeploymentAvailable, RoutePlan, Router
from routing.strategies import COST_OPTIMIZED


def plan_attempt(
    router: Router, route: ModelRoute, snapshot: ConfigSnapshot, *, estimate: Estimate, cached: bool
) -> RoutePlan:
    """The deployments to try; ``cost_optimized`` ranks them by the request's estimated cost.
    When none is available (breakers open) but ``cached`` (a cached answer may serve the
    request), every deployment is planned anyway: the cache is looked up, and a miss finds
    them all unavailable and is refused as it would have been."""
    ranked = route.strategy == COST_OPTIMIZED
    try:
        return router.plan(
            route,
            catalog=snapshot.catalog,
            prompt_tokens=estimate.prompt_tokens if ranked else 0,
            completion_tokens=estimate.completion_tokens if ranked else 0,
        )
    except NoDeploymentAvailable:
        if not cached:
            raise
        return router.plan(route, catalog=snapshot.catalog, unavailable_too=True)


@contextmanager
def routing_headers(exchange: Exchange, route_plan: RoutePlan) -> Iterator[None]:
    """``x-gateway-attempts`` and ``x-gateway-deployment`` on the response, failed or not."""
    try:
        yield
    finally:
        exchange.headers.update(route_plan.response_headers())


async def call_upstream(
    router: Router, chat: ChatRequest, settling: Settling, cached: ChatCache, *, dialect: Dialect
) -> HttpResponseBase:
    """Call the upstream(s) and respond, streamed or not; a normal answer goes to the cache.
    The answer's outcome is reported to ``settling`` as soon as it is known (so a failure after
    it still records the usage); a stream takes the request over."""
    request = settling.request
    exchange, route_plan = request.exchange, request.route_plan
    if chat.stream:
        with routing_headers(exchange, route_plan):
            stream = await router.open_stream(
                route_plan, chat.raw, request_id=exchange.request_id, native=chat.native
            )
        try:
            encoder = dialect.stream_encoder(chat)
            return streaming_response(stream, settling, encoder=encoder, capture=cached.capture())
        except BaseException:
            get_runtime().spawn(stream.aclose())  # no body will close the upstream stream
            raise
    with routing_headers(exchange, route_plan):
        completion = await router.complete(
            route_plan, chat.raw, request_id=exchange.request_id, native=chat.native
        )
    settling.served(Outcome(usage=completion.usage, response_body=completion.body))
    cached.store(completion.body, usage=completion.usage)
    return json_response(await dialect.render_completion(completion.body, chat, native=completion.native))
