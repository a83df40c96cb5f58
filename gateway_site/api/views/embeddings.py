"""``POST /v1/embeddings``: authenticate, parse, resolve the model, admit (rate limits and cost
quotas, like chat: tokens reserved from the input's estimate and settled with the upstream's
count), route, respond. One usage record per admitted request (endpoint ``embeddings``, prompt
tokens priced at the deployment's input price)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

from gateway_site.api.admit import admit_request
from gateway_site.api.authenticate import authenticate, check_declared_size, require_method, resolve_route
from gateway_site.api.body import request_body
from gateway_site.api.endpoint import model_endpoint
from gateway_site.api.estimate import NO_ESTIMATE, estimate_embeddings
from gateway_site.api.exchange import Exchange
from gateway_site.api.outcome import Outcome
from gateway_site.api.parse.embeddings import parse_embeddings_request
from gateway_site.api.responses import json_response
from gateway_site.api.route import routing_headers
from gateway_site.api.settle import settling
from gateway_site.runtime.process import get_runtime
from providers.types import Usage


@model_endpoint
async def embeddings(request: HttpRequest, exchange: Exchange) -> HttpResponseBase:
    require_method(request, "POST")
    runtime = get_runtime()
    snapshot, key = await authenticate(request, exchange)
    check_declared_size(request)
    model, raw = parse_embeddings_request(await request_body(request), limit=settings.GATEWAY_MAX_BODY_BYTES)
    snapshot, key, route = await resolve_route(request, snapshot, key, model, exchange)
    router = runtime.router()
    route_plan = router.plan(route, catalog=snapshot.catalog)
    admitted = await admit_request(
        runtime,
        key=key,
        model=model,
        estimate=NO_ESTIMATE if key.limits.empty else estimate_embeddings(raw),
        route_plan=route_plan,
        exchange=exchange,
        body=raw,
        endpoint="embeddings",
    )
    with settling(admitted) as settle:
        with routing_headers(exchange, route_plan):
            result = await router.embed(route_plan, raw, request_id=exchange.request_id)
        settle.served(Outcome(usage=Usage(prompt_tokens=result.prompt_tokens, completion_tokens=0)))
        return json_response(result.body)
