"""The Responses API on the pipeline's seam: one ``ResponsesDialect`` per request renders the
answer as its ``response`` object (JSON, or the typed event stream), errors in OpenAI's
envelope, and keeps the response (``store``, the default) before the client has it: a response
that could not be kept fails the request, recorded as such. ``store: false`` writes nothing."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import orjson
from asgiref.sync import sync_to_async
from django.http import HttpResponse

from gateway_site.api.dialects.responses.create import CreateRequest
from gateway_site.api.dialects.responses.events import ResponseEvents
from gateway_site.api.dialects.responses.output import ResponseFrame, completed_response
from gateway_site.api.parse.chat import ChatRequest, JsonObject
from gateway_site.api.responses import RenderableError, error_response
from stored_responses.services import StoredContent, response_store

NAME = "responses"


@dataclass(frozen=True, slots=True)
class Owner:
    tenant_id: int
    key_id: int | None


@dataclass(frozen=True, slots=True)
class ResponsesDialect:
    """``conversation`` is what the response is made from (a previous response's items and
    output, then this request's input items): what ``input_items`` lists and a later
    ``previous_response_id`` continues."""

    frame: ResponseFrame
    conversation: tuple[JsonObject, ...]
    owner: Owner
    name: str = NAME

    @property
    def request(self) -> CreateRequest:
        return self.frame.request

    def render_error(self, error: RenderableError) -> HttpResponse:
        return error_response(error)

    async def render_completion(
        self, body: bytes, request: ChatRequest, *, native: bytes | None = None
    ) -> bytes:
        response = completed_response(self.frame, orjson.loads(body))
        await self.keep(response)
        return orjson.dumps(response)

    def stream_encoder(self, request: ChatRequest) -> ResponseEvents:
        return ResponseEvents(self.frame, chat=request.raw, keep=self.keep)

    async def keep(self, response: JsonObject) -> None:
        """Store ``response`` and the conversation, when the request asked to."""
        if not self.request.store:
            return
        content = StoredContent(response=orjson.dumps(response), items=orjson.dumps(list(self.conversation)))
        await sync_to_async(response_store)(
            self.frame.id,
            tenant_id=self.owner.tenant_id,
            key_id=self.owner.key_id,
            created_at=dt.datetime.fromtimestamp(self.frame.created_at, dt.UTC),
            content=content,
        )
