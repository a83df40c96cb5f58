"""The Messages API's stream for one request (its ``StreamEncoder``).

When the upstream spoke the Messages API (an Anthropic deployment), its events are relayed as
they came (``StreamEvent.native``). Otherwise the gateway's internal stream (OpenAI chat
chunks) is rewritten into Anthropic's events: ``message_start`` and a ``ping``, then for each
run of text or each tool call a content block (``content_block_start``, ``text_delta`` or
``input_json_delta`` deltas, ``content_block_stop``), then ``message_delta`` with the stop
reason and the usage, and ``message_stop``. A failure after the first byte is an ``error``
event in Anthropic's envelope. No Django here."""

from __future__ import annotations

import orjson

from gateway_site.api.dialects.messages.answer import (
    JsonObject,
    message_id,
    stop_reason,
    usage_object,
    usage_of,
)
from gateway_site.api.dialects.messages.envelope import stream_error_type
from providers.types import StreamEvent, Usage


def sse_event(kind: str, payload: JsonObject) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **payload}) + b"\n\n"


class MessagesEvents:
    """Per-request state: whether the message started, which content block is open (its index
    and, for a tool call, the call's position), the stop reason and the usage seen so far."""

    def __init__(self, *, model: str) -> None:
        self._model = model
        self._native = False
        self._started = False
        self._blocks = 0  # content blocks started
        self._open: str | None = None  # "text" or "tool:<position>"
        self._tool_blocks: dict[int, int] = {}  # tool call position -> block index
        self._stop: str | None = None
        self._usage: Usage | None = None

    def event(self, event: StreamEvent) -> bytes:
        if event.native is not None:
            self._native = True
            return event.native
        if event.payload is None or self._native:
            return b""
        chunk = orjson.loads(event.payload)
        out = b"" if self._started else self._start(chunk)
        if event.usage is not None or chunk.get("usage") is not None:
            self._usage = event.usage or usage_of(chunk.get("usage"))
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else []:
            if isinstance(choice, dict):
                out += self._choice(choice)
        return out

    async def done(self, usage: Usage | None) -> bytes:
        if self._native:
            return b""
        out = b"" if self._started else self._start({})
        out += self._close()
        delta = {"stop_reason": self._stop or "end_turn", "stop_sequence": None}
        out += sse_event("message_delta", {"delta": delta, "usage": usage_object(usage or self._usage)})
        return out + sse_event("message_stop", {})

    def error(self, error: bytes) -> bytes:
        parsed = orjson.loads(error).get("error") or {}
        message = parsed.get("message") or "The upstream provider failed mid-stream."
        envelope = {"type": stream_error_type(parsed), "message": message}
        return sse_event("error", {"error": envelope})

    def _start(self, chunk: JsonObject) -> bytes:
        self._started = True
        message = {
            "id": message_id(chunk.get("id")),
            "type": "message",
            "role": "assistant",
            "model": chunk.get("model") or self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage_object(None),
        }
        return sse_event("message_start", {"message": message}) + sse_event("ping", {})

    def _choice(self, choice: JsonObject) -> bytes:
        out = b""
        delta = choice.get("delta")
        delta = delta if isinstance(delta, dict) else {}
        text = delta.get("content") or delta.get("refusal")
        if isinstance(text, str) and text:
            out += self._text(text)
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else []:
            if isinstance(call, dict):
                out += self._tool(call)
        if choice.get("finish_reason"):
            self._stop = "refusal" if delta.get("refusal") else stop_reason(choice["finish_reason"])
        return out

    def _text(self, text: str) -> bytes:
        out = b""
        if self._open != "text":
            out += self._begin("text", {"type": "text", "text": ""})
        delta = {"type": "text_delta", "text": text}
        return out + sse_event("content_block_delta", {"index": self._blocks - 1, "delta": delta})

    def _tool(self, call: JsonObject) -> bytes:
        """A tool call's first delta (it has an id) opens its block; later ones add arguments."""
        out = b""
        position = call.get("index", 0)
        position = position if isinstance(position, int) else 0
        function = call.get("function")
        function = function if isinstance(function, dict) else {}
        if call.get("id") and position not in self._tool_blocks:
            block = {"type": "tool_use", "id": call["id"], "name": function.get("name", ""), "input": {}}
            out += self._begin(f"tool:{position}", block)
            self._tool_blocks[position] = self._blocks - 1
        fragment = function.get("arguments")
        index = self._tool_blocks.get(position)
        if isinstance(fragment, str) and fragment and index is not None:
            delta = {"type": "input_json_delta", "partial_json": fragment}
            out += sse_event("content_block_delta", {"index": index, "delta": delta})
        return out

    def _begin(self, kind: str, block: JsonObject) -> bytes:
        out = self._close()
        self._open = kind
        self._blocks += 1
        return out + sse_event("content_block_start", {"index": self._blocks - 1, "content_block": block})

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return sse_event("content_block_stop", {"index": self._blocks - 1})
