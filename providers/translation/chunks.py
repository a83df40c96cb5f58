"""OpenAI-shaped output for adapters that translate another vendor's format: the
``chat.completion`` body and the ``chat.completion.chunk`` stream events (docs/providers.md,
"Every kind")."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from providers.types import Completion, StreamEvent, Usage


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # a JSON string, as OpenAI sends it

    def wire(self) -> dict[str, object]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(frozen=True, slots=True)
class Choice:
    content: str | None
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str = "stop"
    index: int = 0

    def wire(self) -> dict[str, object]:
        message: dict[str, object] = {"role": "assistant", "content": self.content, "refusal": None}
        if self.tool_calls:
            message["tool_calls"] = [call.wire() for call in self.tool_calls]
        return {
            "index": self.index,
            "message": message,
            "logprobs": None,
            "finish_reason": self.finish_reason,
        }


def usage_wire(usage: Usage) -> dict[str, object]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def completion(
    *, id: str, created: int, model: str, choices: list[Choice], usage: Usage | None
) -> Completion:
    body: dict[str, object] = {
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [choice.wire() for choice in choices],
    }
    if usage is not None:
        body["usage"] = usage_wire(usage)
    return Completion(body=orjson.dumps(body), usage=usage)


def error_event(message: str, *, error_type: str = "upstream_error", code: str | None = None) -> StreamEvent:
    """An in-stream error (``data: {"error": ...}``), after which the relay closes the stream."""
    error = {"message": message, "type": error_type, "param": None, "code": code}
    return StreamEvent(payload=orjson.dumps({"error": error}), error=True)


@dataclass(slots=True)
class ChunkWriter:
    """``chat.completion.chunk`` events sharing one ``id``, ``created`` and ``model``."""

    id: str
    created: int
    model: str

    def _chunk(self, choices: list[dict[str, object]], **extra: object) -> bytes:
        return orjson.dumps(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": choices,
                **extra,
            }
        )

    def delta(
        self, delta: dict[str, object], *, finish: str | None = None, index: int = 0, text: str = ""
    ) -> StreamEvent:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        return StreamEvent(payload=self._chunk([choice]), text=text)

    def role(self, *, index: int = 0) -> StreamEvent:
        return self.delta({"role": "assistant", "content": ""}, index=index)

    def text(self, text: str, *, index: int = 0) -> StreamEvent:
        return self.delta({"content": text}, index=index, text=text)

    def tool_call(self, position: int, call: ToolCall, *, index: int = 0) -> StreamEvent:
        """A tool call's first delta (id, name, and the arguments so far, often "")."""
        entry = {"index": position, **call.wire()}
        return self.delta({"tool_calls": [entry]}, index=index, text=call.arguments)

    def tool_arguments(self, position: int, fragment: str, *, index: int = 0) -> StreamEvent:
        entry = {"index": position, "function": {"arguments": fragment}}
        return self.delta({"tool_calls": [entry]}, index=index, text=fragment)

    def finish(self, reason: str, *, index: int = 0) -> StreamEvent:
        return self.delta({}, finish=reason, index=index)

    def usage(self, usage: Usage) -> StreamEvent:
        return StreamEvent(payload=self._chunk([], usage=usage_wire(usage)), usage=usage, usage_only=True)
