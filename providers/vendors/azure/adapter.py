"""The thin I/O of the ``azure`` kind: OpenAI's stream reader with Azure's chunk translation."""

from __future__ import annotations

from providers.translation.upstream import UpstreamCall, post
from providers.types import Completion
from providers.vendors.azure.errors import map_error
from providers.vendors.azure.request import to_upstream
from providers.vendors.azure.response import from_upstream
from providers.vendors.azure.stream import from_chunk
from providers.vendors.openai import stream as openai


class AzureAdapter:
    async def complete(self, call: UpstreamCall) -> Completion:
        request = to_upstream(call.body, call.deployment, stream=False)
        response = await post(call, request, map_error=map_error, stream=False)
        return from_upstream(response.content)

    async def open_stream(self, call: UpstreamCall) -> openai.OpenAIStream:
        request = to_upstream(call.body, call.deployment, stream=True)
        response = await post(call, request, map_error=map_error, stream=True)
        return openai.OpenAIStream(response, call, parse=from_chunk)
