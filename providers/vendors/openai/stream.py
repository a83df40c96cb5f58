"""An OpenAI stream as it comes back: SSE events relayed as they are, each read for its text and
usage; an error event is relayed scrubbed of the provider's credentials."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx

from providers.errors import UpstreamProtocolError
from providers.sse import SSEDecoder
from providers.translation.error_policy import stream_error
from providers.translation.upstream import UpstreamCall, transport_failure
from providers.types import StreamEvent
from providers.vendors.openai.response import load_object, parse_usage


def from_chunk(data: bytes) -> StreamEvent:
    parsed = load_object(data)
    if "error" in parsed and not parsed.get("choices"):
        return StreamEvent(payload=data, error=True)
    choices = parsed.get("choices")
    choices = choices if isinstance(choices, list) else []
    usage = parse_usage(parsed.get("usage"))
    text = []
    for choice in choices:
        delta = choice.get("delta") if isinstance(choice, dict) else None
        content = delta.get("content") if isinstance(delta, dict) else None
        if isinstance(content, str):
            text.append(content)
    return StreamEvent(
        payload=data, usage=usage, usage_only=usage is not None and not choices, text="".join(text)
    )


class OpenAIStream:
    def __init__(
        self,
        response: httpx.Response,
        call: UpstreamCall,
        *,
        parse: Callable[[bytes], StreamEvent] = from_chunk,
    ) -> None:
        self._response = response
        self._config = call.deployment.provider
        self._provider = call.deployment.provider.name
        self._parse = parse

    def _event(self, data: bytes) -> StreamEvent:
        event = self._parse(data)
        return stream_error(event.payload, self._config) if event.error and event.payload else event

    async def events(self) -> AsyncIterator[StreamEvent]:
        decoder = SSEDecoder()
        try:
            async for chunk in self._response.aiter_raw():
                for event in decoder.feed(chunk):
                    if event.data == b"[DONE]":
                        return
                    yield self._event(event.data)
        except httpx.TransportError as exc:
            raise transport_failure(exc, self._provider) from None
        for event in decoder.flush():
            if event.data == b"[DONE]":
                return
            yield self._event(event.data)
        raise UpstreamProtocolError(
            f"The upstream provider '{self._provider}' ended the stream before it was complete."
        )

    async def aclose(self) -> None:
        await self._response.aclose()
