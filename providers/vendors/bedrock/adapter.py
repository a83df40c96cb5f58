"""The thin I/O of the ``bedrock`` kind: send the signed request, read the answer or decode and
translate the event stream as it arrives."""

from __future__ import annotations

import time

from providers.translation.translated_stream import TranslatedStream
from providers.translation.upstream import UpstreamCall, post
from providers.types import Completion
from providers.vendors.bedrock.errors import map_error
from providers.vendors.bedrock.framing import EventStreamFraming
from providers.vendors.bedrock.request import to_upstream
from providers.vendors.bedrock.response import completion_id, from_upstream
from providers.vendors.bedrock.stream import BedrockStreamTranslator


class BedrockAdapter:
    async def complete(self, call: UpstreamCall) -> Completion:
        request = to_upstream(call.body, call.deployment, stream=False)
        response = await post(call, request, map_error=map_error, stream=False)
        return from_upstream(
            response.content,
            created=int(time.time()),
            model=call.deployment.upstream_model,
            id=completion_id(response.headers),
        )

    async def open_stream(self, call: UpstreamCall) -> TranslatedStream:
        request = to_upstream(call.body, call.deployment, stream=True)
        response = await post(call, request, map_error=map_error, stream=True)
        provider = call.deployment.provider.name
        translator = BedrockStreamTranslator(
            provider=provider,
            created=int(time.time()),
            model=call.deployment.upstream_model,
            id=completion_id(response.headers),
        )
        return TranslatedStream(
            response, provider=call.deployment.provider, translator=translator, framing=EventStreamFraming()
        )
