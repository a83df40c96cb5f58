"""The thin I/O of the ``openai`` kind: send the translated request, read the answer or open the
stream."""

from __future__ import annotations

from providers.translation.upstream import UpstreamCall, post
from providers.types import Completion
from providers.vendors.openai.errors import map_error
from providers.vendors.openai.request import to_upstream
from providers.vendors.openai.response import from_upstream
from providers.vendors.openai.stream import OpenAIStream


class OpenAIAdapter:
    async def complete(self, call: UpstreamCall) -> Completion:
        request = to_upstream(call.body, call.deployment, stream=False)
        response = await post(call, request, map_error=map_error, stream=False)
        return from_upstream(response.content)

    async def open_stream(self, call: UpstreamCall) -> OpenAIStream:
        request = to_upstream(call.body, call.deployment, stream=True)
        return OpenAIStream(await post(call, request, map_error=map_error, stream=True), call)
