"""The thin I/O of the ``anthropic`` kind: send the translated request, read the message or
translate the SSE stream as it arrives."""

from __future__ import annotations

import time

from providers.translation.translated_stream import SSEFraming, TranslatedStream
from providers.translation.upstream import UpstreamCall, post
from providers.types import Completion
from providers.vendors.anthropic.errors import map_error
from providers.vendors.anthropic.request import to_upstream
from providers.vendors.anthropic.response import from_upstream
from providers.vendors.anthropic.stream import AnthropicStreamTranslator


class AnthropicAdapter:
    async def complete(self, call: UpstreamCall) -> Completion:
        request = to_upstream(call.body, call.deployment, stream=False)
        response = await post(call, request, map_error=map_error, stream=False)
        return from_upstream(response.content, created=int(time.time()))

    async def open_stream(self, call: UpstreamCall) -> TranslatedStream:
        request = to_upstream(call.body, call.deployment, stream=True)
        response = await post(call, request, map_error=map_error, stream=True)
        provider = call.deployment.provider.name
        translator = AnthropicStreamTranslator(provider=provider, created=int(time.time()))
        return TranslatedStream(
            response, provider=call.deployment.provider, translator=translator, framing=SSEFraming()
        )
