"""Bedrock's Converse answer and ConverseStream events in the Messages API's format, for the
clients of the gateway's ``/v1/messages`` (the request went up through ``messages``): text,
tool use, and Claude's reasoning as ``thinking`` blocks with their signatures (or
``redacted_thinking``); usage with cache reads and writes. The stream is rewritten event by
event (``ConverseAsMessages``): Converse opens text and reasoning blocks with their first delta
and reports usage after the stop, so block starts are written when a block's first delta
comes, and the stop reason waits for the usage."""

from __future__ import annotations

import orjson

from providers.translation.upstream import JsonObject
from providers.translation.vendor_json import count, json_object

_STOP_REASONS = {
    "end_turn": "end_turn",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "model_context_window_exceeded": "model_context_window_exceeded",
    "guardrail_intervened": "refusal",
    "content_filtered": "refusal",
}


def stop_reason(converse_reason: object) -> str:
    return _STOP_REASONS.get(str(converse_reason), "end_turn")


def usage(raw: object) -> JsonObject:
    raw = raw if isinstance(raw, dict) else {}
    return {
        "input_tokens": count(raw, "inputTokens"),
        "cache_creation_input_tokens": count(raw, "cacheWriteInputTokens"),
        "cache_read_input_tokens": count(raw, "cacheReadInputTokens"),
        "output_tokens": count(raw, "outputTokens"),
    }


def _block(block: JsonObject) -> JsonObject | None:
    if isinstance(block.get("text"), str):
        return {"type": "text", "text": block["text"]}
    use = block.get("toolUse")
    if isinstance(use, dict):
        return {
            "type": "tool_use",
            "id": use.get("toolUseId", ""),
            "name": use.get("name", ""),
            "input": use.get("input", {}),
        }
    reasoning = block.get("reasoningContent")
    if isinstance(reasoning, dict):
        if "redactedContent" in reasoning:
            return {"type": "redacted_thinking", "data": reasoning["redactedContent"]}
        text = reasoning.get("reasoningText")
        text = text if isinstance(text, dict) else {}
        return {"type": "thinking", "thinking": text.get("text", ""), "signature": text.get("signature", "")}
    return None


def message_from_converse(content: bytes, *, id: str, model: str) -> bytes:
    """A Converse answer (already read as valid by ``response.from_upstream``) as a ``message``."""
    parsed = json_object(content)
    output = parsed.get("output")
    message = output.get("message") if isinstance(output, dict) else None
    blocks = message.get("content") if isinstance(message, dict) else None
    converted = [_block(b) for b in blocks if isinstance(b, dict)] if isinstance(blocks, list) else []
    return orjson.dumps(
        {
            "id": id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [block for block in converted if block is not None],
            "stop_reason": stop_reason(parsed.get("stopReason")),
            "stop_sequence": None,
            "usage": usage(parsed.get("usage")),
        }
    )


def _sse(kind: str, payload: JsonObject) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **payload}) + b"\n\n"


class ConverseAsMessages:
    """One ConverseStream's events as Messages API events (bytes per Converse event)."""

    def __init__(self, *, id: str, model: str) -> None:
        self._id, self._model = id, model
        self._open: set[int] = set()
        self._stop = "end_turn"

    def feed(self, event: str, data: bytes) -> bytes:
        payload = orjson.loads(data) if data else {}
        handler = getattr(self, f"_on_{event}", None)
        return handler(payload) if handler is not None and isinstance(payload, dict) else b""

    def end(self) -> bytes:
        """The stream stopped without its usage event: the message ends without usage."""
        return self._finish({})

    def _on_messageStart(self, payload: JsonObject) -> bytes:
        message: JsonObject = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage({}),
        }
        return _sse("message_start", {"message": message})

    def _on_contentBlockStart(self, payload: JsonObject) -> bytes:
        start, index = payload.get("start"), payload.get("contentBlockIndex")
        use = start.get("toolUse") if isinstance(start, dict) else None
        if not isinstance(use, dict) or not isinstance(index, int):
            return b""
        self._open.add(index)
        block = {"type": "tool_use", "id": use.get("toolUseId", ""), "name": use.get("name", ""), "input": {}}
        return _sse("content_block_start", {"index": index, "content_block": block})

    def _on_contentBlockDelta(self, payload: JsonObject) -> bytes:
        delta, index = payload.get("delta"), payload.get("contentBlockIndex")
        if not isinstance(delta, dict) or not isinstance(index, int):
            return b""
        out = b"" if index in self._open else self._start(index, delta)
        converted = _delta(delta)
        if converted is not None:
            out += _sse("content_block_delta", {"index": index, "delta": converted})
        return out

    def _start(self, index: int, delta: JsonObject) -> bytes:
        self._open.add(index)
        reasoning = delta.get("reasoningContent")
        if isinstance(reasoning, dict) and "redactedContent" in reasoning:
            block: JsonObject = {"type": "redacted_thinking", "data": reasoning["redactedContent"]}
        elif isinstance(reasoning, dict):
            block = {"type": "thinking", "thinking": "", "signature": ""}
        else:
            block = {"type": "text", "text": ""}
        return _sse("content_block_start", {"index": index, "content_block": block})

    def _on_contentBlockStop(self, payload: JsonObject) -> bytes:
        index = payload.get("contentBlockIndex")
        return _sse("content_block_stop", {"index": index}) if isinstance(index, int) else b""

    def _on_messageStop(self, payload: JsonObject) -> bytes:
        self._stop = stop_reason(payload.get("stopReason"))
        return b""

    def _on_metadata(self, payload: JsonObject) -> bytes:
        return self._finish(payload.get("usage"))

    def _finish(self, raw_usage: object) -> bytes:
        delta = {"stop_reason": self._stop, "stop_sequence": None}
        return _sse("message_delta", {"delta": delta, "usage": usage(raw_usage)}) + _sse("message_stop", {})


def _delta(delta: JsonObject) -> JsonObject | None:
    if isinstance(delta.get("text"), str):
        return {"type": "text_delta", "text": delta["text"]}
    use = delta.get("toolUse")
    if isinstance(use, dict) and isinstance(use.get("input"), str):
        return {"type": "input_json_delta", "partial_json": use["input"]}
    reasoning = delta.get("reasoningContent")
    if isinstance(reasoning, dict) and isinstance(reasoning.get("text"), str):
        return {"type": "thinking_delta", "thinking": reasoning["text"]}
    if isinstance(reasoning, dict) and isinstance(reasoning.get("signature"), str):
        return {"type": "signature_delta", "signature": reasoning["signature"]}
    return None
