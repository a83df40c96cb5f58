"""The Responses API: ``POST /v1/responses`` (authenticate, parse, replay the stored history of
``previous_response_id``, then the shared pipeline answering in the Responses dialect),
``GET`` / ``DELETE /v1/responses/{id}``, ``GET /v1/responses/{id}/input_items`` and
``POST /v1/responses/input_tokens``. A stored response is read only through its own tenant's
keys: any other id answers the same 404."""

from __future__ import annotations

import orjson
from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

from gateway_site.api.authenticate import authenticate, check_declared_size, require_method, resolve_route
from gateway_site.api.body import request_body
from gateway_site.api.dialects.responses.create import CreateRequest, parse_create_request, unsupported
from gateway_site.api.dialects.responses.dialect import Owner, ResponsesDialect
from gateway_site.api.dialects.responses.items import input_items, item_page
from gateway_site.api.dialects.responses.output import ResponseFrame
from gateway_site.api.dialects.responses.translate import chat_body, responses_param
from gateway_site.api.endpoint import api_endpoint, model_endpoint
from gateway_site.api.errors import NotFound, RequestError
from gateway_site.api.estimate import estimate_chat
from gateway_site.api.exchange import Exchange
from gateway_site.api.parse.bounds import check_length
from gateway_site.api.parse.chat import ChatRequest, JsonObject
from gateway_site.api.pipeline import serve_model_request
from gateway_site.api.responses import json_response
from providers.errors import UnsupportedRequest
from quotas.authentication.registry import KeyContext
from stored_responses.services import StoredContent, response_delete, response_get


def _not_found(response_id: str, *, param: str) -> NotFound:
    return NotFound(f"Response with id '{response_id}' not found.", param=param)


async def _stored(response_id: str, key: KeyContext, *, param: str) -> StoredContent:
    stored = await sync_to_async(response_get)(response_id, tenant_id=key.tenant_id)
    if stored is None:
        raise _not_found(response_id, param=param)
    return stored


async def _conversation(create: CreateRequest, key: KeyContext) -> tuple[JsonObject, ...]:
    """The items the response is made from: the previous response's items and output, then the
    request's own input items; no more than ``GATEWAY_MAX_MESSAGES`` in all."""
    own = input_items(create)
    previous = create.body.previous_response_id
    if previous is None:
        return tuple(own)
    stored = await _stored(previous, key, param="previous_response_id")
    response = orjson.loads(stored.response)
    conversation = [*orjson.loads(stored.items), *response["output"], *own]
    check_length(conversation, param="previous_response_id", limit=settings.GATEWAY_MAX_MESSAGES)
    return tuple(conversation)


@model_endpoint
async def create_response(request: HttpRequest, exchange: Exchange) -> HttpResponseBase:
    require_method(request, "POST")
    snapshot, key = await authenticate(request, exchange)
    check_declared_size(request)
    create = parse_create_request(await request_body(request), limit=settings.GATEWAY_MAX_BODY_BYTES)
    conversation = await _conversation(create, key)
    raw = chat_body(create, conversation=conversation)
    chat = ChatRequest(model=create.model, stream=create.stream, include_usage=True, raw=raw)
    owner = Owner(tenant_id=key.tenant_id, key_id=key.key_id or None)  # 0: a bearer token
    dialect = ResponsesDialect(frame=ResponseFrame.new(create), conversation=conversation, owner=owner)
    try:
        return await serve_model_request(
            request, exchange, snapshot=snapshot, key=key, chat=chat, dialect=dialect
        )
    except UnsupportedRequest as refusal:  # a provider cannot take a translated parameter
        refusal.param = responses_param(refusal.param)
        raise


def _check_include(request: HttpRequest) -> None:
    for value in request.GET.getlist("include") + request.GET.getlist("include[]"):
        if value not in ("message.input_image.image_url", "reasoning.encrypted_content"):
            raise unsupported(f"include value '{value}' is not supported.", param="include")


@api_endpoint
async def response_detail(
    request: HttpRequest, exchange: Exchange, response_id: str = ""
) -> HttpResponseBase:
    if request.method != "DELETE":
        require_method(request, "GET")
    _, key = await authenticate(request, exchange)
    if request.method == "DELETE":
        if not await sync_to_async(response_delete)(response_id, tenant_id=key.tenant_id):
            raise _not_found(response_id, param="response_id")
        return json_response({"id": response_id, "object": "response", "deleted": True})
    if request.GET.get("stream", "false") != "false":
        raise unsupported("A stored response is not streamed again; omit 'stream'.", param="stream")
    _check_include(request)
    return json_response((await _stored(response_id, key, param="response_id")).response)


def _page_limit(value: str | None) -> int:
    if value is None:
        return 20
    if not value.isdigit() or not 1 <= int(value) <= 100:
        raise RequestError("'limit' must be an integer from 1 to 100.", param="limit")
    return int(value)


@api_endpoint
async def response_input_items(
    request: HttpRequest, exchange: Exchange, response_id: str = ""
) -> HttpResponseBase:
    require_method(request, "GET")
    _, key = await authenticate(request, exchange)
    limit = _page_limit(request.GET.get("limit"))
    order = request.GET.get("order", "desc")
    if order not in ("asc", "desc"):
        raise RequestError("'order' must be 'asc' or 'desc'.", param="order")
    _check_include(request)
    stored = await _stored(response_id, key, param="response_id")
    items = orjson.loads(stored.items)
    return json_response(item_page(items, after=request.GET.get("after"), limit=limit, order=order))


@api_endpoint
async def response_input_tokens(request: HttpRequest, exchange: Exchange) -> HttpResponseBase:
    """The prompt tokens a create body holds, counted as the gateway counts them for its limits
    (its offline tokenizer, tools and output format included); no model is called."""
    require_method(request, "POST")
    snapshot, key = await authenticate(request, exchange)
    check_declared_size(request)
    body = _with_model(await request_body(request))
    create = parse_create_request(body, limit=settings.GATEWAY_MAX_BODY_BYTES)
    if create.model != _NO_MODEL:
        await resolve_route(request, snapshot, key, create.model, exchange)
    chat = chat_body(create, conversation=await _conversation(create, key))
    tokens = estimate_chat(chat, default_max_tokens=0).prompt_tokens
    return json_response({"object": "response.input_tokens", "input_tokens": tokens})


_NO_MODEL = "-"


def _with_model(body: bytes) -> bytes:
    """The counting body names no model when it leaves ``model`` out; ``stream`` and ``store``
    mean nothing to a count."""
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if not isinstance(raw, dict):
        return body
    for name in ("stream", "store", "stream_options"):
        if name in raw:
            raise RequestError(f"Unrecognized request argument supplied: {name}", param=name)
    raw.setdefault("model", _NO_MODEL)
    raw.setdefault("input", [])
    return orjson.dumps(raw)
