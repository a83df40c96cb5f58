"""Gemini's ``streamGenerateContent?alt=sse`` as OpenAI chunk events.

Every event is a whole ``GenerateContentResponse`` holding only the new parts, with cumulative
``usageMetadata``; there is no end marker, the body just ends. The first event gives a role
chunk per candidate; text parts become content deltas; each ``functionCall`` (always whole)
becomes one complete tool-call delta; ``finishReason`` a finish chunk (``tool_calls`` when a
call was seen); the end of the body the usage chunk. An ``error`` object is an in-stream error."""

from __future__ import annotations

from providers.errors import UpstreamProtocolError
from providers.translation.chunks import ChunkWriter, error_event
from providers.translation.vendor_json import event_object
from providers.types import StreamEvent, Usage
from providers.vendors.gemini.response import calls_of, field, finish_reason, parts_of, text_of, usage_from
from providers.vendors.gemini.thought_signatures import IdFactory, random_id


class GeminiStreamTranslator:
    def __init__(self, *, provider: str, created: int, model: str, new_id: IdFactory = random_id) -> None:
        self._provider = provider
        self._writer = ChunkWriter(id="", created=created, model=model)
        self._new_id = new_id
        self._usage: Usage | None = None
        self._calls: dict[int, int] = {}  # candidate index -> tool calls seen
        self._finished: set[int] = set()
        self.done = False

    def feed(self, event: str, data: bytes) -> list[StreamEvent]:
        parsed = event_object(data, provider=self._provider)
        if parsed is None:
            return []
        if "error" in parsed:
            self.done = True
            message = field(parsed["error"], "message") or "unknown error"
            return [error_event(f"The upstream provider '{self._provider}' failed mid-stream: {message}")]
        if not self._writer.id:
            self._writer.id = str(field(parsed, "responseId") or f"chatcmpl-{self._new_id()}")
            self._writer.model = str(field(parsed, "modelVersion") or self._writer.model)
        usage = usage_from(field(parsed, "usageMetadata"))
        self._usage = usage or self._usage
        candidates = field(parsed, "candidates")
        out: list[StreamEvent] = []
        for position, candidate in enumerate(candidates if isinstance(candidates, list) else []):
            index = field(candidate, "index")
            out.extend(self._candidate(candidate, index if isinstance(index, int) else position))
        return out

    def _candidate(self, candidate: object, index: int) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        if index not in self._calls:
            self._calls[index] = 0
            out.append(self._writer.role(index=index))
        parts = parts_of(candidate)
        text = text_of(parts)
        if text:
            out.append(self._writer.text(text, index=index))
        for call in calls_of(parts, self._new_id):
            out.append(self._writer.tool_call(self._calls[index], call, index=index))
            self._calls[index] += 1
        reason = field(candidate, "finishReason")
        if isinstance(reason, str) and index not in self._finished:
            self._finished.add(index)
            out.append(self._writer.finish(finish_reason(reason, called=self._calls[index] > 0), index=index))
        return out

    def end(self) -> list[StreamEvent]:
        if not self._finished:
            raise UpstreamProtocolError(
                f"The upstream provider '{self._provider}' ended the stream before it was complete."
            )
        self.done = True
        return [self._writer.usage(self._usage)] if self._usage is not None else []
