"""The thin I/O of a translated stream: read the upstream body as it arrives, decode its
framing (SSE here; Bedrock brings its own decoder), and let a pure translator turn each vendor
event into OpenAI chunk events. An error event leaves scrubbed of the provider's credentials
(``error_policy.stream_error``): translators quote the vendor's error message."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Protocol

import httpx

from providers.sse import SSEDecoder
from providers.translation.error_policy import stream_error
from providers.translation.upstream import transport_failure
from providers.types import ProviderConfig, StreamEvent


class StreamTranslator(Protocol):
    @property
    def done(self) -> bool:
        """True once the vendor's stream said it is complete: stop reading."""
        ...

    def feed(self, event: str, data: bytes) -> list[StreamEvent]: ...

    def end(self) -> list[StreamEvent]:
        """The body ended: the last events, or UpstreamProtocolError if it ended too early."""
        ...


class Framing(Protocol):
    def feed(self, chunk: bytes) -> Iterable[tuple[str, bytes]]: ...

    def flush(self) -> Iterable[tuple[str, bytes]]: ...


class SSEFraming:
    def __init__(self) -> None:
        self._decoder = SSEDecoder()

    def feed(self, chunk: bytes) -> list[tuple[str, bytes]]:
        return [(e.event, e.data) for e in self._decoder.feed(chunk)]

    def flush(self) -> list[tuple[str, bytes]]:
        return [(e.event, e.data) for e in self._decoder.flush()]


def translate_all(
    translator: StreamTranslator, framing: Framing, chunks: Iterable[bytes]
) -> list[StreamEvent]:
    """Pure: the events a whole recorded body yields (tests feed it split anywhere)."""
    out: list[StreamEvent] = []
    for chunk in chunks:
        for name, data in framing.feed(chunk):
            out.extend(translator.feed(name, data))
            if translator.done:
                return out
    for name, data in framing.flush():
        out.extend(translator.feed(name, data))
        if translator.done:
            return out
    return out + translator.end()


class TranslatedStream:
    def __init__(
        self,
        response: httpx.Response,
        *,
        provider: ProviderConfig,
        translator: StreamTranslator,
        framing: Framing,
    ) -> None:
        self._response = response
        self._provider = provider
        self._translator = translator
        self._framing = framing

    def _relayed(self, event: StreamEvent) -> StreamEvent:
        return stream_error(event.payload, self._provider) if event.error and event.payload else event

    async def events(self) -> AsyncIterator[StreamEvent]:
        translator = self._translator
        try:
            async for chunk in self._response.aiter_raw():
                for name, data in self._framing.feed(chunk):
                    for event in translator.feed(name, data):
                        yield self._relayed(event)
                    if translator.done:
                        return
        except httpx.TransportError as exc:
            raise transport_failure(exc, self._provider.name) from None
        for name, data in self._framing.flush():
            for event in translator.feed(name, data):
                yield self._relayed(event)
            if translator.done:
                return
        for event in translator.end():
            yield self._relayed(event)

    async def aclose(self) -> None:
        await self._response.aclose()
