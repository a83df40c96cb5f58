"""A stream answered in the client's own dialect: each vendor event is translated as usual (into
the OpenAI chunk events the gateway reads for usage, the cache and the chat dialect) and also
rendered in the client's dialect, carried on the first event translated from it
(``StreamEvent.native``), or on an event of its own when the translation made none."""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from providers.translation.native_body import sse_frame
from providers.translation.translated_stream import StreamTranslator
from providers.types import StreamEvent


class NativeRenderer(Protocol):
    def feed(self, event: str, data: bytes) -> bytes:
        """The client dialect's bytes for one vendor event (empty: none)."""
        ...

    def end(self) -> bytes:
        """What the client dialect still needs when the vendor's body ended without its end."""
        ...


class VendorFrames:
    """A vendor that speaks the client's dialect: each event as it sent it."""

    def feed(self, event: str, data: bytes) -> bytes:
        return sse_frame(event, data)

    def end(self) -> bytes:
        return b""


class NativeEvents:
    """``translator``'s events, each carrying ``renderer``'s bytes for the vendor event."""

    def __init__(self, translator: StreamTranslator, renderer: NativeRenderer) -> None:
        self._translator, self._renderer = translator, renderer

    @property
    def done(self) -> bool:
        return self._translator.done

    def feed(self, event: str, data: bytes) -> list[StreamEvent]:
        return _carried(self._translator.feed(event, data), self._renderer.feed(event, data))

    def end(self) -> list[StreamEvent]:
        return _carried(self._translator.end(), self._renderer.end())


def _carried(events: list[StreamEvent], native: bytes) -> list[StreamEvent]:
    if not events:
        return [StreamEvent(payload=None, native=native)]
    return [replace(events[0], native=native), *(replace(e, native=b"") for e in events[1:])]
