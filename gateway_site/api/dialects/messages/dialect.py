"""The Messages dialect as the pipeline takes it: errors in Anthropic's envelope, the answer as
Anthropic's ``message`` (the upstream's own when an Anthropic deployment served it), the stream
through ``MessagesEvents``."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpResponse

from gateway_site.api.dialects.messages.answer import message_from_completion
from gateway_site.api.dialects.messages.envelope import anthropic_status, error_body
from gateway_site.api.dialects.messages.events import MessagesEvents
from gateway_site.api.parse.chat import ChatRequest
from gateway_site.api.responses import RenderableError, json_response, relayed_error_object
from providers.errors import UpstreamError
from providers.types import ANTHROPIC_MESSAGES

# Where the Anthropic SDKs read the request id a failure report should quote.
REQUEST_ID_HEADER = "request-id"


def error_message(error: RenderableError) -> str:
    """What the client is told: an upstream's words pass the relay redactor first."""
    if isinstance(error, UpstreamError):
        relayed = relayed_error_object(error)["error"]
        return str(relayed.get("message") or "") if isinstance(relayed, dict) else ""
    return error.message


@dataclass(frozen=True, slots=True)
class Messages:
    name: str = ANTHROPIC_MESSAGES

    def render_error(self, error: RenderableError) -> HttpResponse:
        status = anthropic_status(error.status)
        response = json_response(error_body(status, error_message(error)), status=status)
        for name, value in error.headers.items():
            response[name] = value
        return response

    async def render_completion(
        self, body: bytes, request: ChatRequest, *, native: bytes | None = None
    ) -> bytes:
        if native is not None:
            return native
        return message_from_completion(body, model=request.model)

    def stream_encoder(self, request: ChatRequest) -> MessagesEvents:
        return MessagesEvents(model=request.model)


MESSAGES = Messages()
