"""Streams and the response cache: ``StreamAssembler`` rebuilds the non-streaming completion a
streamed answer amounts to (so it can be cached and served to either kind of request), and
``replay_chunks`` turns a cached completion back into OpenAI ``chat.completion.chunk`` payloads.
Only single-choice answers without logprobs are assembled; anything else is not stored."""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from providers.translation.upstream import JsonObject
from routing.cache import COMPLETE_FINISH_REASONS


@dataclass(slots=True)
class _ToolCall:
    id: str = ""
    type: str = "function"
    name: str = ""
    arguments: str = ""

    def feed(self, delta: JsonObject) -> None:
        self.id = str(delta.get("id") or self.id)
        self.type = str(delta.get("type") or self.type)
        function = delta.get("function")
        if isinstance(function, dict):
            self.name += str(function.get("name") or "")
            self.arguments += str(function.get("arguments") or "")

    def wire(self) -> JsonObject:
        return {
            "id": self.id,
            "type": self.type,
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(slots=True)
class StreamAssembler:
    """Feed it every chunk payload of a stream; ``completion()`` is the equivalent
    ``chat.completion`` body, or None when the stream is not one it can store faithfully
    (several choices, logprobs, a refusal, no usage, no normal finish)."""

    head: JsonObject = field(default_factory=dict)
    content: list[str] = field(default_factory=list)
    tool_calls: dict[int, _ToolCall] = field(default_factory=dict)
    finish_reason: object = None
    usage: object = None
    unsupported: bool = False

    def feed(self, payload: bytes) -> None:
        if self.unsupported:
            return
        try:
            chunk = orjson.loads(payload)
        except orjson.JSONDecodeError:
            self.unsupported = True
            return
        if not isinstance(chunk, dict):
            self.unsupported = True
            return
        if not self.head:
            self.head = {k: chunk[k] for k in ("id", "created", "model", "system_fingerprint") if k in chunk}
        if chunk.get("usage") is not None:
            self.usage = chunk["usage"]
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else []:
            self._feed_choice(choice)

    def _feed_choice(self, choice: object) -> None:
        if not isinstance(choice, dict) or choice.get("index", 0) != 0 or choice.get("logprobs"):
            self.unsupported = True
            return
        delta = choice.get("delta")
        delta = delta if isinstance(delta, dict) else {}
        if delta.get("refusal"):
            self.unsupported = True
        if isinstance(delta.get("content"), str):
            self.content.append(delta["content"])
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else []:
            index = call.get("index") if isinstance(call, dict) else None
            if not isinstance(index, int) or not isinstance(call, dict):
                self.unsupported = True
                return
            self.tool_calls.setdefault(index, _ToolCall()).feed(call)
        if choice.get("finish_reason") is not None:
            self.finish_reason = choice["finish_reason"]

    def completion(self) -> bytes | None:
        if self.unsupported or self.finish_reason not in COMPLETE_FINISH_REASONS or self.usage is None:
            return None
        text = "".join(self.content)
        message: JsonObject = {"role": "assistant", "content": text or (None if self.tool_calls else "")}
        if self.tool_calls:
            message["tool_calls"] = [self.tool_calls[i].wire() for i in sorted(self.tool_calls)]
        body: JsonObject = {
            "id": self.head.get("id", ""),
            "object": "chat.completion",
            "created": self.head.get("created", 0),
            "model": self.head.get("model", ""),
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": self.finish_reason}
            ],
            "usage": self.usage,
        }
        if "system_fingerprint" in self.head:
            body["system_fingerprint"] = self.head["system_fingerprint"]
        return orjson.dumps(body)


def _chunk(base: JsonObject, delta: JsonObject, finish_reason: object = None) -> bytes:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
    return orjson.dumps({**base, "choices": [choice]})


def _tool_call_deltas(calls: object) -> list[JsonObject]:
    listed = calls if isinstance(calls, list) else []
    return [{"index": i, **call} for i, call in enumerate(listed) if isinstance(call, dict)]


def replay_chunks(body: bytes, *, include_usage: bool) -> tuple[list[bytes], str]:
    """The chunk payloads of a cached single-choice completion: the role, the content (one
    chunk), the tool calls (one chunk), the finish reason, and the usage (``choices: []``) when
    ``include_usage``; with the content text (for the time to first token)."""
    parsed = orjson.loads(body)
    base: JsonObject = {k: parsed[k] for k in ("id", "created", "model") if k in parsed}
    base["object"] = "chat.completion.chunk"
    if "system_fingerprint" in parsed:
        base["system_fingerprint"] = parsed["system_fingerprint"]
    choice = parsed["choices"][0]
    message = choice.get("message") or {}
    content = message.get("content")
    text = content if isinstance(content, str) else ""
    chunks = [_chunk(base, {"role": "assistant", "content": ""})]
    if text:
        chunks.append(_chunk(base, {"content": text}))
    if message.get("tool_calls"):
        chunks.append(_chunk(base, {"tool_calls": _tool_call_deltas(message["tool_calls"])}))
    chunks.append(_chunk(base, {}, choice.get("finish_reason")))
    if include_usage and parsed.get("usage") is not None:
        chunks.append(orjson.dumps({**base, "choices": [], "usage": parsed["usage"]}))
    return chunks, text
