"""The OpenAI-compatible endpoints. Each view reads as the request path: authenticate, parse,
resolve the model, admit (rate limits and cost quotas), consult the response cache, route,
respond."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

from gateway_site.api.admission import NO_ESTIMATE, Estimate, admit, estimate_chat
from gateway_site.api.body import request_body
from gateway_site.api.caching import ChatCache, consult_cache, may_answer_from_cache
from gateway_site.api.endpoint import api_endpoint, model_endpoint, settles
from gateway_site.api.errors import MethodNotAllowed, ModelNotFound, NotFound, PayloadTooLarge
from gateway_site.api.exchange import Exchange, UsageTracker
from gateway_site.api.parsing import ChatRequest, parse_chat_request
from gateway_site.api.responses import json_response
from gateway_site.api.streaming import streaming_response
from gateway_site.runtime import Runtime, Snapshot, get_runtime
from gateway_site.tracing import span
from providers.types import ModelRoute
from quotas.access import model_allowed
from quotas.errors import UnknownKey
from quotas.keys import key_from_headers
from quotas.registry import KeyContext
from routing.cache import parse_cache_control
from routing.router import Attempt, NoDeploymentAvailable, Router
from routing.strategies import COST_OPTIMIZED


def require_method(request: HttpRequest, method: str) -> None:
    if request.method != method:
        raise MethodNotAllowed(f"Method {request.method} is not allowed here; use {method}.")


async def authenticate(request: HttpRequest, exchange: Exchange) -> tuple[Snapshot, KeyContext]:
    """The current snapshot and the presented key's context in it, the key also noted on
    ``exchange`` for the access log line of a request refused later. A key the snapshot does not
    know is looked up again after a revision check, so a key works the moment it is issued."""
    watcher = get_runtime().watcher
    snapshot = watcher.current()
    with span("auth"):
        presented = key_from_headers(request.headers.get("authorization"), request.headers.get("x-api-key"))
        try:
            key = snapshot.keys.authenticate(presented)
        except UnknownKey:
            snapshot = await watcher.catch_up(snapshot)
            key = snapshot.keys.authenticate(presented)
    exchange.key = key
    return snapshot, key


def check_declared_size(request: HttpRequest) -> None:
    declared = request.headers.get("content-length", "")
    limit = settings.GATEWAY_MAX_BODY_BYTES
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The request body is {declared} bytes; the limit is {limit} bytes.")


def _route_in(snapshot: Snapshot, key: KeyContext, model: str, exchange: Exchange) -> ModelRoute:
    """The model's route. A model the key may not use is answered exactly as one that does not
    exist (status, body and metric label), so a key cannot learn which models other tenants have."""
    route = snapshot.catalog.models.get(model)
    if route is None or not model_allowed(key.policy, model):
        raise ModelNotFound(f"The model '{model}' does not exist.", param="model")
    exchange.model = model
    return route


async def resolve_route(
    request: HttpRequest, snapshot: Snapshot, key: KeyContext, model: str, exchange: Exchange
) -> tuple[Snapshot, KeyContext, ModelRoute]:
    """The public model's route; from here on the request is labelled with the model (an
    existing one only, so metric labels stay bounded). A model the snapshot does not have, or
    does not let the key use, is looked up again after a revision check (with the key's context
    in the newer snapshot), so a model or access rule works the moment it is saved."""
    try:
        return snapshot, key, _route_in(snapshot, key, model, exchange)
    except ModelNotFound:
        newer = await _newer(request, exchange, snapshot)
        if newer is None:
            raise
    snapshot, key = newer
    return snapshot, key, _route_in(snapshot, key, model, exchange)


async def _newer(
    request: HttpRequest, exchange: Exchange, snapshot: Snapshot
) -> tuple[Snapshot, KeyContext] | None:
    """After a revision check, the newer snapshot with the key's context in it; None when the
    check found nothing new (the refusal stands)."""
    if await get_runtime().watcher.catch_up(snapshot) is snapshot:
        return None
    return await authenticate(request, exchange)


def _estimate(chat: ChatRequest, *, key: KeyContext, route: ModelRoute) -> Estimate:
    """The request's estimate, counted once and only when read: by the key's limits, or by a
    ``cost_optimized`` route ranking its deployments."""
    if key.limits.empty and route.strategy != COST_OPTIMIZED:
        return NO_ESTIMATE
    return estimate_chat(chat.raw, default_max_tokens=settings.GATEWAY_DEFAULT_MAX_TOKENS)


def _plan(
    router: Router, route: ModelRoute, snapshot: Snapshot, *, estimate: Estimate, cached: bool
) -> Attempt:
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
def attempt_headers(exchange: Exchange, attempt: Attempt) -> Iterator[None]:
    """``x-gateway-attempts`` and ``x-gateway-deployment`` on the response, failed or not."""
    try:
        yield
    finally:
        exchange.headers.update(attempt.response_headers())


@model_endpoint
async def chat_completions(request: HttpRequest, exchange: Exchange) -> HttpResponseBase:
    require_method(request, "POST")
    runtime = get_runtime()
    snapshot, key = await authenticate(request, exchange)
    check_declared_size(request)
    chat = parse_chat_request(await request_body(request), limit=settings.GATEWAY_MAX_BODY_BYTES)
    snapshot, key, route = await resolve_route(request, snapshot, key, chat.model, exchange)
    router = runtime.router()
    cache_control = parse_cache_control(request.headers.get("cache-control"))
    estimate = _estimate(chat, key=key, route=route)
    attempt = _plan(
        router,
        route,
        snapshot,
        estimate=estimate,
        cached=may_answer_from_cache(cache_control, route=route, chat=chat),
    )
    tracker = await admit_request(
        runtime,
        key=key,
        model=chat.model,
        estimate=estimate,
        attempt=attempt,
        exchange=exchange,
        body=chat.raw,
        streamed=chat.stream,
    )
    with settles(tracker):
        cached = await consult_cache(
            runtime.cache(),
            control=cache_control,
            route=route,
            chat=chat,
            tracker=tracker,
        )
        if cached.hit is not None:
            return cached.serve_hit(cached.hit, chat=chat, catalog=snapshot.catalog)
        return await _route(router, chat, tracker, cached)


async def admit_request(
    runtime: Runtime,
    *,
    key: KeyContext,
    model: str,
    estimate: Estimate,
    attempt: Attempt,
    exchange: Exchange,
    body: dict[str, object],
    streamed: bool = False,
    endpoint: str = "chat.completions",
) -> UsageTracker:
    """Admit the request (one limiter round trip; raises the refusal) and return what from now
    on must settle and record it exactly once: the caller runs the rest inside ``settles``."""
    with span("limits"):
        admission = await admit(
            runtime.limiter(),
            key=key,
            model=model,
            estimate=estimate,
            deployments=attempt.candidates,
            exchange=exchange,
            deadline=attempt.deadline,
        )
    return UsageTracker(
        writer=runtime.usage,
        exchange=exchange,
        key=key,
        model=model,
        attempt=attempt,
        body=body,
        streamed=streamed,
        endpoint=endpoint,
        admission=admission,
    )


async def _route(
    router: Router, chat: ChatRequest, tracker: UsageTracker, cached: ChatCache
) -> HttpResponseBase:
    """Call the upstream(s) and respond, streamed or not; a normal answer goes to the cache."""
    exchange, attempt = tracker.exchange, tracker.attempt
    if chat.stream:
        with attempt_headers(exchange, attempt):
            stream = await router.open_stream(attempt, chat.raw, request_id=exchange.request_id)
        try:
            return streaming_response(
                stream, tracker, include_usage=chat.include_usage, capture=cached.capture()
            )
        except BaseException:
            get_runtime().spawn(stream.aclose())  # no body will close the upstream stream
            raise
    with attempt_headers(exchange, attempt):
        completion = await router.complete(attempt, chat.raw, request_id=exchange.request_id)
        tracker.usage, tracker.response_body = completion.usage, completion.body
    cached.store(completion.body)
    return json_response(completion.body)


def _model_object(route: ModelRoute) -> dict[str, object]:
    return {"id": route.name, "object": "model", "created": route.created, "owned_by": route.owned_by}


@api_endpoint
async def list_models(request: HttpRequest, exchange: Exchange) -> HttpResponseBase:
    require_method(request, "GET")
    snapshot, key = await authenticate(request, exchange)
    data = [
        _model_object(route)
        for name, route in sorted(snapshot.catalog.models.items())
        if model_allowed(key.policy, name)
    ]
    return json_response({"object": "list", "data": data})


def _visible_model(snapshot: Snapshot, key: KeyContext, model_id: str) -> ModelRoute | None:
    route = snapshot.catalog.models.get(model_id)
    return route if route is not None and model_allowed(key.policy, model_id) else None


@api_endpoint
async def retrieve_model(request: HttpRequest, exchange: Exchange, model_id: str = "") -> HttpResponseBase:
    require_method(request, "GET")
    snapshot, key = await authenticate(request, exchange)
    route = _visible_model(snapshot, key, model_id)
    if route is None and (newer := await _newer(request, exchange, snapshot)) is not None:
        route = _visible_model(*newer, model_id)
    if route is None:
        raise ModelNotFound(f"The model '{model_id}' does not exist.", param="model")
    return json_response(_model_object(route))


@api_endpoint
async def not_found(request: HttpRequest, exchange: Exchange) -> HttpResponseBase:
    raise NotFound(f"Unknown endpoint: {request.method} {request.path}.")
