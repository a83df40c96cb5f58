"""What a dialect provides the pipeline: ``Dialect`` and its per-request ``StreamEncoder``."""

from __future__ import annotations

from typing import Protocol

from django.http import HttpResponse

from gateway_site.api.parse.chat import ChatRequest
from gateway_site.api.responses import RenderableError
from providers.types import StreamEvent, Usage


class StreamEncoder(Protocol):
    """Turns the upstream's stream (OpenAI chat chunks, as the adapters produce them; with the
    vendor's own events in ``StreamEvent.native`` when the request went to it in the client's
    dialect) into the dialect's Server-Sent Events, for one request."""

    def event(self, event: StreamEvent) -> bytes:
        """The SSE bytes for one upstream event (empty: nothing to send for it)."""

    async def done(self, usage: Usage | None) -> bytes:
        """The stream's terminal event(s), after the upstream ended normally. Awaited before
        they are sent, so a dialect that keeps state (a stored response) has kept it by the time
        the client hears the stream ended; what it raises fails the stream like a relay error."""

    def error(self, error: bytes) -> bytes:
        """The terminal event of a stream that failed after its first byte; ``error`` is the
        JSON of an OpenAI error object, already redacted."""


class Dialect(Protocol):
    @property
    def name(self) -> str:
        """The usage record's ``endpoint``, a metrics and log label, the cache namespace."""

    def render_error(self, error: RenderableError) -> HttpResponse:
        """A refusal or failure in the dialect's envelope, with its status and headers."""

    async def render_completion(
        self, body: bytes, request: ChatRequest, *, native: bytes | None = None
    ) -> bytes:
        """The answer's body in the dialect's format, from the upstream's chat completion, or
        ``native``: the upstream's own answer when the request went to it in this dialect.
        Awaited inside the settlement guard, so a dialect that keeps state (a stored response)
        keeps it before answering, and a failure to keep it ends the request as recorded."""

    def stream_encoder(self, request: ChatRequest) -> StreamEncoder: ...
