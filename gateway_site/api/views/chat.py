"""``POST /v1/chat/completions``: authenticate, parse the body (OpenAI's Chat Completions), then
the shared pipeline (``gateway_site.api.pipeline``), answering in the same dialect."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

from gateway_site.api.authenticate import authenticate, check_declared_size, require_method
from gateway_site.api.body import request_body
from gateway_site.api.dialects.openai_chat import OPENAI_CHAT
from gateway_site.api.endpoint import model_endpoint
from gateway_site.api.exchange import Exchange
from gateway_site.api.parse.chat import parse_chat_request
from gateway_site.api.pipeline import serve_model_request


@model_endpoint
async def chat_completions(request: HttpRequest, exchange: Exchange) -> HttpResponseBase:
    require_method(request, "POST")
    snapshot, key = await authenticate(request, exchange)
    check_declared_size(request)
    chat = parse_chat_request(await request_body(request), limit=settings.GATEWAY_MAX_BODY_BYTES)
    return await serve_model_request(
        request, exchange, snapshot=snapshot, key=key, chat=chat, dialect=OPENAI_CHAT
    )
