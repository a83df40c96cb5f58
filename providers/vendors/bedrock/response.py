"""Reading Bedrock Converse answers: stop reasons and usage (shared with the stream translation),
and a whole answer as a ``chat.completion``. Bedrock sends no id: the completion id is
``chatcmpl-`` + the ``x-amzn-RequestId`` header."""

from __future__ import annotations

import secrets
from collections.abc import Mapping

import orjson

from providers.errors import UpstreamProtocolError
from providers.translation.chunks import Choice, ToolCall, completion
from providers.translation.vendor_json import count, parse_or_none
from providers.types import Completion, Usage

_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}


def finish_reason(stop_reason: object) -> str:
    """Unknown and ``malformed_*`` reasons end as ``stop`` (the answer is still returned)."""
    return _FINISH.get(str(stop_reason), "stop")


def usage_from(raw: object) -> Usage | None:
    """Prompt = input + cache read + cache write tokens; cached = cache reads; cache write = cache
    creation."""
    if not isinstance(raw, dict) or not isinstance(raw.get("outputTokens"), int):
        return None
    cached = count(raw, "cacheReadInputTokens")
    written = count(raw, "cacheWriteInputTokens")
    prompt = count(raw, "inputTokens") + cached + written
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=count(raw, "outputTokens"),
        cached_tokens=cached,
        cache_write_tokens=written,
    )


def completion_id(headers: Mapping[str, str]) -> str:
    request_id = headers.get("x-amzn-requestid")
    return f"chatcmpl-{request_id}" if request_id else f"chatcmpl-{secrets.token_hex(12)}"


def from_upstream(content: bytes, *, created: int, model: str, id: str) -> Completion:
    parsed = parse_or_none(content)
    output = parsed.get("output") if isinstance(parsed, dict) else None
    message = output.get("message") if isinstance(output, dict) else None
    blocks = message.get("content") if isinstance(message, dict) else None
    if not isinstance(parsed, dict) or not isinstance(blocks, list):
        raise UpstreamProtocolError("The upstream provider sent a response without output.message.content.")
    texts = [str(b["text"]) for b in blocks if isinstance(b, dict) and isinstance(b.get("text"), str)]
    calls = tuple(
        ToolCall(
            id=str(use.get("toolUseId", "")),
            name=str(use.get("name", "")),
            arguments=orjson.dumps(use.get("input", {})).decode(),
        )
        for b in blocks
        if isinstance(b, dict) and isinstance(use := b.get("toolUse"), dict)
    )
    choice = Choice(
        content="".join(texts) if texts or not calls else None,
        tool_calls=calls,
        finish_reason=finish_reason(parsed.get("stopReason")),
    )
    return completion(
        id=id, created=created, model=model, choices=[choice], usage=usage_from(parsed.get("usage"))
    )
