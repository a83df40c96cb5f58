"""The thin I/O of the ``gemini`` kind: send the translated request, read the answer or translate
the SSE stream as it arrives."""

from __future__ import annotations

import time

from providers.translation.translated_stream import SSEFraming, TranslatedStream
from providers.translation.upstream import UpstreamCall, post
from providers.types import Completion
from providers.vendors.gemini.errors import map_error
from providers.vendors.gemini.request import to_upstream
from providers.vendors.gemini.response import from_upstream
from providers.vendors.gemini.stream import GeminiStreamTranslator


class GeminiAdapter:
    async def complete(self, call: UpstreamCall) -> Completion:
        request = to_upstream(call.body, call.deployment, stream=False)
        response = await post(call, request, map_error=map_error, stream=False)
        return from_upstream(response.content, created=int(time.time()), model=call.deployment.upstream_model)

    async def open_stream(self, call: UpstreamCall) -> TranslatedStream:
        request = to_upstream(call.body, call.deployment, stream=True)
        response = await post(call, request, map_error=map_error, stream=True)
        provider = call.deployment.provider.name
        translator = GeminiStreamTranslator(
            provider=provider, created=int(time.time()), model=call.deployment.upstream_model
        )
        return TranslatedStream(
            response, provider=call.deployment.provider, translator=translator, framing=SSEFraming()
        )
