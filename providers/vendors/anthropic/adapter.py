"""The thin I/O of the ``anthropic`` kind: send the translated request, read the message or
translate the SSE stream as it arrives; a request a client wrote in the Messages API's own
format goes through as written (``passthrough``)."""

from __future__ import annotations

import time

from providers.translation.translated_stream import SSEFraming, TranslatedStream
from providers.translation.upstream import UpstreamCall, post
from providers.types import Completion
from providers.vendors.anthropic import passthrough
from providers.vendors.anthropic.errors import map_error
from providers.vendors.anthropic.request import to_upstream
from providers.vendors.anthropic.response import from_upstream
from providers.vendors.anthropic.stream import AnthropicStreamTranslator


class AnthropicAdapter:
    async def complete(self, call: UpstreamCall) -> Completion:
        if call.native is not None:
            return await passthrough.complete(call, call.native)
        request = to_upstream(call.body, call.deployment, stream=False)
        response = await post(call, request, map_error=map_error, stream=False)
        return from_upstream(response.content, created=int(time.time()))

    async def open_stream(self, call: UpstreamCall) -> TranslatedStream:
        if call.native is not None:
            return await passthrough.open_stream(call, call.native)
        request = to_upstream(call.body, call.deployment, stream=True)
        response = await post(call, request, map_error=map_error, stream=True)
        provider = call.deployment.provider.name
        translator = AnthropicStreamTranslator(provider=provider, created=int(time.time()))
        return TranslatedStream(
            response, provider=call.deployment.provider, translator=translator, framing=SSEFraming()
        )
