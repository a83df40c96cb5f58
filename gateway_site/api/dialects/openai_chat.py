"""OpenAI Chat Completions: the gateway's internal format, so answers and chunks go out as the
upstream adapters produced them. The usage chunk is sent only when the client asked for it
(``stream_options.include_usage``); a stream ends with ``data: [DONE]``."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpResponse

from gateway_site.api.parse.chat import ChatRequest
from gateway_site.api.responses import RenderableError, error_response
from providers.types import StreamEvent, Usage

_DONE = b"data: [DONE]\n\n"


def sse_data(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"


@dataclass(frozen=True, slots=True)
class ChatChunks:
    include_usage: bool

    def event(self, event: StreamEvent) -> bytes:
        if event.payload is None or (event.usage_only and not self.include_usage):
            return b""
        return sse_data(event.payload)

    async def done(self, usage: Usage | None) -> bytes:
        return _DONE

    def error(self, error: bytes) -> bytes:
        return sse_data(error)


@dataclass(frozen=True, slots=True)
class OpenAIChat:
    name: str = "chat.completions"

    def render_error(self, error: RenderableError) -> HttpResponse:
        return error_response(error)

    async def render_completion(
        self, body: bytes, request: ChatRequest, *, native: bytes | None = None
    ) -> bytes:
        return body

    def stream_encoder(self, request: ChatRequest) -> ChatChunks:
        return ChatChunks(include_usage=request.include_usage)


OPENAI_CHAT = OpenAIChat()
