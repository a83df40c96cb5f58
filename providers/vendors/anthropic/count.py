"""Anthropic's own count of a Messages request's input tokens (``/v1/messages/count_tokens``):
exact for the model, free, and nothing is generated."""

from __future__ import annotations

from providers.errors import UnsupportedRequest, UpstreamProtocolError
from providers.translation.upstream import UpstreamCall, post
from providers.translation.vendor_json import json_object
from providers.vendors.anthropic.errors import map_error
from providers.vendors.anthropic.passthrough import native_request


async def count_input_tokens(call: UpstreamCall) -> int:
    native = call.native
    if native is None:
        raise UnsupportedRequest("Token counting takes a Messages API request.", param="model")
    request = native_request(call, native, path="/v1/messages/count_tokens")
    response = await post(call, request, map_error=map_error, stream=False)
    tokens = json_object(response.content).get("input_tokens")
    if not isinstance(tokens, int) or isinstance(tokens, bool):
        raise UpstreamProtocolError("The upstream provider sent a token count without 'input_tokens'.")
    return tokens
