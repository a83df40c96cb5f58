"""``POST /v1/chat/completions``: authenticate, parse, estimate, admit, consult the cache,
route, respond; one module a stage (``gateway_site.api``)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

from gateway_site.api.admit import admit_request
from gateway_site.api.authenticate import authenticate, check_declared_size, require_method, resolve_route
from gateway_site.api.body import request_body
from gateway_site.api.cache import consult_cache, may_answer_from_cache
from gateway_site.api.endpoint import model_endpoint
from gateway_site.api.estimate import estimate_for
from gateway_site.api.exchange import Exchange
from gateway_site.api.parse.chat import parse_chat_request
from gateway_site.api.route import call_upstream, plan_attempt
from gateway_site.api.settle import settling
from gateway_site.runtime.process import get_runtime
from routing.cache import parse_cache_control


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
    estimate = estimate_for(chat, key=key, route=route)
    route_plan = plan_attempt(
        router,
        route,
        snapshot,
        estimate=estimate,
        cached=may_answer_from_cache(cache_control, route=route, chat=chat),
    )
    admitted = await admit_request(
        runtime,
        key=key,
        model=chat.model,
        estimate=estimate,
        route_plan=route_plan,
        exchange=exchange,
        body=chat.raw,
        streamed=chat.stream,
    )
    with settling(admitted) as settle:
        cached = await consult_cache(
            runtime.cache(),
            control=cache_control,
            route=route,
            chat=chat,
            tenant_id=key.tenant_id,
            route_plan=route_plan,
            exchange=exchange,
        )
        if cached.hit is not None:
            hit = cached.hit
            return cached.serve_hit(
                hit, chat=chat, catalog=snapshot.catalog, settling=settle, exchange=exchange
            )
        return await call_upstream(router, chat, settle, cached)
