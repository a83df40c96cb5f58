"""The one pipeline every dialect's model request runs through, once its body is parsed into
the internal request: resolve the model, estimate, plan the route, admit, consult the cache,
call the upstream and respond in the dialect; from admission on inside ``settle.settling``, so
the request is settled and recorded once whatever happens."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponseBase

from gateway_site.api.admit import admit_request
from gateway_site.api.authenticate import resolve_route
from gateway_site.api.cache import consult_cache, may_answer_from_cache
from gateway_site.api.dialects.base import Dialect
from gateway_site.api.estimate import estimate_for
from gateway_site.api.exchange import Exchange
from gateway_site.api.parse.chat import ChatRequest
from gateway_site.api.route import call_upstream, plan_attempt
from gateway_site.api.settle import settling
from gateway_site.runtime.process import get_runtime
from gateway_site.runtime.snapshot import ConfigSnapshot
from quotas.authentication.registry import KeyContext
from routing.cache import parse_cache_control


async def serve_model_request(
    request: HttpRequest,
    exchange: Exchange,
    *,
    snapshot: ConfigSnapshot,
    key: KeyContext,
    chat: ChatRequest,
    dialect: Dialect,
) -> HttpResponseBase:
    runtime = get_runtime()
    snapshot, key, route = await resolve_route(request, snapshot, key, chat.model, exchange)
    router = runtime.router()
    cache_control = parse_cache_control(request.headers.get("cache-control"))
    estimate = estimate_for(chat, key=key, route=route)
    may_cache = may_answer_from_cache(cache_control, route=route, chat=chat)
    route_plan = plan_attempt(router, route, snapshot, estimate=estimate, cached=may_cache)
    admitted = await admit_request(
        runtime,
        key=key,
        model=chat.model,
        estimate=estimate,
        route_plan=route_plan,
        exchange=exchange,
        body=chat.raw,
        streamed=chat.stream,
        endpoint=dialect.name,
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
            dialect=dialect.name,
        )
        if cached.hit is not None:
            hit, catalog = cached.hit, snapshot.catalog
            return await cached.serve_hit(
                hit, chat=chat, catalog=catalog, settling=settle, exchange=exchange, dialect=dialect
            )
        return await call_upstream(router, chat, settle, cached, dialect=dialect)
