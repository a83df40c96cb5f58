"""``POST /v1/messages`` (Anthropic's Messages API): authenticate, parse the body into the
internal request with the client's own beside it, then the shared pipeline, answering in the
Messages dialect. ``POST /v1/messages/count_tokens``: the input tokens of a Messages request,
counted by the upstream when the model's first deployment is Anthropic's (exact), else by the
gateway's tokenizer; nothing is generated, admitted or recorded."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

from gateway_site.api.authenticate import authenticate, check_declared_size, require_method, resolve_route
from gateway_site.api.body import request_body
from gateway_site.api.dialects.messages.dialect import MESSAGES, REQUEST_ID_HEADER
from gateway_site.api.dialects.messages.request import parse_messages_request
from gateway_site.api.endpoint import model_endpoint
from gateway_site.api.estimate import estimate_chat
from gateway_site.api.exchange import Exchange
from gateway_site.api.parse.chat import ChatRequest
from gateway_site.api.pipeline import serve_model_request
from gateway_site.api.responses import json_response
from gateway_site.api.route import routing_headers
from gateway_site.runtime.process import get_runtime
from gateway_site.runtime.snapshot import ConfigSnapshot
from quotas.authentication.registry import KeyContext


async def _parsed(
    request: HttpRequest, exchange: Exchange, *, count_only: bool
) -> tuple[ConfigSnapshot, KeyContext, ChatRequest]:
    """The caller (authenticated before the body is read) and its request."""
    require_method(request, "POST")
    snapshot, key = await authenticate(request, exchange)
    check_declared_size(request)
    chat = parse_messages_request(
        await request_body(request),
        limit=settings.GATEWAY_MAX_BODY_BYTES,
        headers=request.headers,
        count_only=count_only,
    )
    return snapshot, key, chat


async def _create_message(request: HttpRequest, exchange: Exchange) -> HttpResponseBase:
    snapshot, key, chat = await _parsed(request, exchange, count_only=False)
    return await serve_model_request(
        request, exchange, snapshot=snapshot, key=key, chat=chat, dialect=MESSAGES
    )


async def _count_tokens(request: HttpRequest, exchange: Exchange) -> HttpResponseBase:
    snapshot, key, chat = await _parsed(request, exchange, count_only=True)
    snapshot, key, route = await resolve_route(request, snapshot, key, chat.model, exchange)
    router = get_runtime().router()
    route_plan = router.plan(route, catalog=snapshot.catalog)
    assert chat.native is not None  # a Messages request always carries its own
    with routing_headers(exchange, route_plan):
        counted = await router.count_tokens(
            route_plan, chat.raw, request_id=exchange.request_id, native=chat.native
        )
    if counted is None:
        counted = estimate_chat(chat.raw, default_max_tokens=0).prompt_tokens
    return json_response({"input_tokens": counted})


create_message = model_endpoint(_create_message, dialect=MESSAGES, request_id_header=REQUEST_ID_HEADER)
count_tokens = model_endpoint(_count_tokens, dialect=MESSAGES, request_id_header=REQUEST_ID_HEADER)
