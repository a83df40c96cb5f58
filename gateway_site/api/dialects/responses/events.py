"""The Responses API's stream: the upstream's chat chunks (as the adapters produce them) in,
the typed events out, each with the next ``sequence_number``, as Server-Sent Events with an
``event:`` line.

``response.created`` and ``response.in_progress`` come with the first upstream event; text
opens an assistant ``message`` item (``output_item.added``, ``content_part.added``) and streams
as ``output_text.delta``; each tool call opens a ``function_call`` item and streams its
arguments as ``function_call_arguments.delta``; items are closed (``.done`` events) when a tool
call follows the text, and at the end. The stream ends with one ``response.completed`` or
``response.incomplete`` carrying the usage, or, after a failure, ``response.failed`` carrying
the usage the gateway records for it (counted from what went through)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import orjson

from gateway_site.api.dialects.responses.items import new_id
from gateway_site.api.dialects.responses.output import (
    INCOMPLETE,
    ResponseFrame,
    call_item,
    message_item,
    output_text,
    response_object,
)
from gateway_site.api.parse.chat import JsonObject, message_texts
from providers.tokens import count_message_tokens, count_tokens
from providers.types import StreamEvent, Usage

Keep = Callable[[JsonObject], Awaitable[None]]
# ResponseErrorCode values a relayed error code keeps; any other failure is a server_error.
ERROR_CODES = frozenset({"server_error", "rate_limit_exceeded", "invalid_prompt"})


@dataclass(slots=True)
class _Item:
    index: int  # its output_index
    id: str
    kind: str  # "message" or "function_call"
    pieces: list[str] = field(default_factory=list)  # the text, or the arguments, so far
    call_id: str = ""
    name: str = ""
    closed: bool = False

    def body(self, *, status: str) -> JsonObject:
        text = "".join(self.pieces)
        if self.kind == "message":
            return message_item([output_text(text)] if self.closed else [], item_id=self.id, status=status)
        return call_item(item_id=self.id, call_id=self.call_id, name=self.name, arguments=text, status=status)


@dataclass(slots=True)
class ResponseEvents:
    """The stream encoder of one response. ``keep`` stores the final response (``store``) before
    its terminal event is sent; ``chat`` is the internal request (for a usage count)."""

    frame: ResponseFrame
    chat: JsonObject
    keep: Keep | None = None
    sequence: int = 0
    started: bool = False
    items: list[_Item] = field(default_factory=list)
    message: _Item | None = None
    calls: dict[int, _Item] = field(default_factory=dict)
    finish: str | None = None

    def _emit(self, kind: str, **fields: object) -> bytes:
        payload = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"

    def _start(self) -> list[bytes]:
        if self.started:
            return []
        self.started = True
        response = response_object(self.frame, status="in_progress", output=[])
        return [
            self._emit("response.created", response=response),
            self._emit("response.in_progress", response=response),
        ]

    def event(self, event: StreamEvent) -> bytes:
        out = self._start()
        chunk = orjson.loads(event.payload) if event.payload is not None else {}
        choices = chunk.get("choices") if isinstance(chunk, dict) else None
        for choice in choices if isinstance(choices, list) else []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            delta = delta if isinstance(delta, dict) else {}
            content = delta.get("content")
            if isinstance(content, str) and content:
                out.extend(self._text(content))
            calls = delta.get("tool_calls")
            for call in calls if isinstance(calls, list) else []:
                if isinstance(call, dict):
                    out.extend(self._call(call))
            if choice.get("finish_reason"):
                self.finish = str(choice["finish_reason"])
        return b"".join(out)

    def _open(self, kind: str, prefix: str) -> _Item:
        item = _Item(index=len(self.items), id=new_id(prefix), kind=kind)
        self.items.append(item)
        return item

    def _text(self, text: str) -> list[bytes]:
        out: list[bytes] = []
        item = self.message
        if item is None:
            item = self.message = self._open("message", "msg")
            out.append(
                self._emit(
                    "response.output_item.added",
                    output_index=item.index,
                    item=item.body(status="in_progress"),
                )
            )
            part = output_text("")
            out.append(
                self._emit(
                    "response.content_part.added",
                    item_id=item.id,
                    output_index=item.index,
                    content_index=0,
                    part=part,
                )
            )
        item.pieces.append(text)
        out.append(
            self._emit(
                "response.output_text.delta",
                item_id=item.id,
                output_index=item.index,
                content_index=0,
                delta=text,
                logprobs=[],
            )
        )
        return out

    def _call(self, call: JsonObject) -> list[bytes]:
        out: list[bytes] = []
        position = call.get("index", 0)
        function = call.get("function")
        function = function if isinstance(function, dict) else {}
        item = self.calls.get(position) if isinstance(position, int) else None
        if item is None:
            out.extend(self._close_message(status="completed"))
            item = self._open("function_call", "fc")
            item.call_id, item.name = str(call.get("id", "")), str(function.get("name", ""))
            self.calls[position if isinstance(position, int) else len(self.calls)] = item
            out.append(
                self._emit(
                    "response.output_item.added",
                    output_index=item.index,
                    item=item.body(status="in_progress"),
                )
            )
        fragment = function.get("arguments")
        if isinstance(fragment, str) and fragment:
            item.pieces.append(fragment)
            out.append(
                self._emit(
                    "response.function_call_arguments.delta",
                    item_id=item.id,
                    output_index=item.index,
                    delta=fragment,
                )
            )
        return out

    def _close_message(self, *, status: str) -> list[bytes]:
        item = self.message
        if item is None:
            return []
        self.message = None
        item.closed = True
        text = "".join(item.pieces)
        where = {"item_id": item.id, "output_index": item.index, "content_index": 0}
        return [
            self._emit("response.output_text.done", **where, text=text, logprobs=[]),
            self._emit("response.content_part.done", **where, part=output_text(text)),
            self._emit("response.output_item.done", output_index=item.index, item=item.body(status=status)),
        ]

    def _close_calls(self, *, status: str) -> list[bytes]:
        out: list[bytes] = []
        for item in self.calls.values():
            if item.closed:
                continue
            item.closed = True
            out.append(
                self._emit(
                    "response.function_call_arguments.done",
                    item_id=item.id,
                    name=item.name,
                    output_index=item.index,
                    arguments="".join(item.pieces),
                )
            )
            out.append(
                self._emit(
                    "response.output_item.done", output_index=item.index, item=item.body(status=status)
                )
            )
        return out

    def _output(self, *, status: str) -> list[JsonObject]:
        return [item.body(status=status) for item in self.items]

    async def done(self, usage: Usage | None) -> bytes:
        incomplete = INCOMPLETE.get(str(self.finish))
        status = "incomplete" if incomplete else "completed"
        out = self._start()
        out.extend(self._close_message(status=status))
        out.extend(self._close_calls(status=status))
        response = response_object(
            self.frame,
            status=status,
            output=self._output(status=status),
            usage=usage or self._counted(),
            incomplete=incomplete,
        )
        if self.keep is not None:
            await self.keep(response)
        out.append(self._emit(f"response.{status}", response=response))
        return b"".join(out)

    def error(self, error: bytes) -> bytes:
        out = self._start()
        parsed = orjson.loads(error).get("error") or {}
        code = parsed.get("code") if parsed.get("code") in ERROR_CODES else "server_error"
        failure = {"code": code, "message": str(parsed.get("message") or "The response failed.")}
        for item in self.items:
            item.closed = True
        response = response_object(
            self.frame,
            status="failed",
            output=self._output(status="incomplete"),
            usage=self._counted(),
            error=failure,
        )
        out.append(self._emit("response.failed", response=response))
        return b"".join(out)

    def _counted(self) -> Usage:
        """The usage the gateway records when the upstream reported none: the prompt and what
        went through, counted with its tokenizer."""
        streamed = "".join("".join(item.pieces) for item in self.items)
        return Usage(
            prompt_tokens=count_message_tokens(message_texts(self.chat)),
            completion_tokens=count_tokens(streamed),
        )
