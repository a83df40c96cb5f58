"""An Anthropic message as a ``chat.completion``: content and tool calls, the stop reason as a
finish reason, and the usage (shared with the stream translation)."""

from __future__ import annotations

import orjson

from providers.errors import UpstreamProtocolError
from providers.translation.chunks import Choice, ToolCall, completion
from providers.translation.vendor_json import count, json_object
from providers.types import Completion, Usage

_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: object) -> str:
    return _FINISH.get(str(stop_reason), "stop")


def usage_from(raw: object) -> Usage | None:
    """Prompt tokens = input + cache creation + cache read (Anthropic's total input); cached
    tokens = cache reads; cache write tokens = cache creation."""
    if not isinstance(raw, dict) or not isinstance(raw.get("output_tokens"), int):
        return None
    cached = count(raw, "cache_read_input_tokens")
    written = count(raw, "cache_creation_input_tokens")
    prompt = count(raw, "input_tokens") + written + cached
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=count(raw, "output_tokens"),
        cached_tokens=cached,
        cache_write_tokens=written,
    )


def from_upstream(content: bytes, *, created: int) -> Completion:
    message = json_object(content)
    blocks = message.get("content")
    if not isinstance(blocks, list):
        raise UpstreamProtocolError("The upstream provider sent a message without content.")
    texts = [str(b.get("text", "")) for b in blocks if isinstance(b, dict) and b.get("type") == "text"]
    calls = tuple(
        ToolCall(
            id=str(b.get("id", "")),
            name=str(b.get("name", "")),
            arguments=orjson.dumps(b.get("input", {})).decode(),
        )
        for b in blocks
        if isinstance(b, dict) and b.get("type") == "tool_use"
    )
    text = "".join(texts)
    choice = Choice(
        content=text if texts or not calls else None,
        tool_calls=calls,
        finish_reason=finish_reason(message.get("stop_reason")),
    )
    return completion(
        id=str(message.get("id") or ""),
        created=created,
        model=str(message.get("model") or ""),
        choices=[choice],
        usage=usage_from(message.get("usage")),
    )
