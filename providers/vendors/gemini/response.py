"""Reading Gemini's answers, shared by the non-streaming and the streaming translation: both
spellings of every key (camelCase as the REST API sends it, snake_case as some SDK paths do),
finish reasons, usage; and a whole answer as a ``chat.completion``."""

from __future__ import annotations

import re

import orjson

from providers.errors import UpstreamProtocolError
from providers.translation.chunks import Choice, ToolCall, completion
from providers.translation.vendor_json import json_object
from providers.types import Completion, Usage
from providers.vendors.gemini.thought_signatures import IdFactory, random_id, tool_call_id

_CONTENT_FILTER = {
    "SAFETY",
    "RECITATION",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "LANGUAGE",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "IMAGE_RECITATION",
}

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def field(obj: object, camel: str) -> object:
    """``obj[camel]``, or its snake_case spelling; None when absent or ``obj`` is no object."""
    if not isinstance(obj, dict):
        return None
    if camel in obj:
        return obj[camel]
    return obj.get(_CAMEL.sub("_", camel).lower())


def count(obj: object, camel: str) -> int:
    value = field(obj, camel)
    return value if isinstance(value, int) else 0


def parts_of(candidate: object) -> list[dict[str, object]]:
    parts = field(field(candidate, "content"), "parts")
    return [p for p in parts if isinstance(p, dict)] if isinstance(parts, list) else []


def text_of(parts: list[dict[str, object]]) -> str:
    return "".join(
        str(p["text"]) for p in parts if isinstance(p.get("text"), str) and field(p, "thought") is not True
    )


def calls_of(parts: list[dict[str, object]], new_id: IdFactory) -> list[ToolCall]:
    calls = []
    for part in parts:
        call = field(part, "functionCall")
        if not isinstance(call, dict):
            continue
        args = call.get("args")
        calls.append(
            ToolCall(
                id=tool_call_id(new_id, field(part, "thoughtSignature")),
                name=str(call.get("name", "")),
                arguments=orjson.dumps(args if isinstance(args, dict) else {}).decode(),
            )
        )
    return calls


def finish_reason(reason: object, *, called: bool) -> str:
    if reason in _CONTENT_FILTER:
        return "content_filter"
    if reason == "MAX_TOKENS":
        return "length"
    return "tool_calls" if called else "stop"


def usage_from(metadata: object) -> Usage | None:
    """Prompt = promptTokenCount (cached included) + toolUsePromptTokenCount; completion =
    candidates + thoughts; reasoning = thoughts; cached = cachedContentTokenCount."""
    if not isinstance(metadata, dict):
        return None
    thoughts = count(metadata, "thoughtsTokenCount")
    return Usage(
        prompt_tokens=count(metadata, "promptTokenCount") + count(metadata, "toolUsePromptTokenCount"),
        completion_tokens=count(metadata, "candidatesTokenCount") + thoughts,
        cached_tokens=count(metadata, "cachedContentTokenCount"),
        reasoning_tokens=thoughts,
    )


def from_upstream(content: bytes, *, created: int, model: str, new_id: IdFactory = random_id) -> Completion:
    parsed = json_object(content)
    candidates = field(parsed, "candidates")
    choices = [
        _choice(c, i, new_id) for i, c in enumerate(candidates if isinstance(candidates, list) else [])
    ]
    if not choices:
        if field(field(parsed, "promptFeedback"), "blockReason") is None:
            raise UpstreamProtocolError("The upstream provider sent a response without candidates.")
        choices = [Choice(content=None, finish_reason="content_filter")]
    return completion(
        id=str(field(parsed, "responseId") or f"chatcmpl-{new_id()}"),
        created=created,
        model=str(field(parsed, "modelVersion") or model),
        choices=choices,
        usage=usage_from(field(parsed, "usageMetadata")),
    )


def _choice(candidate: object, position: int, new_id: IdFactory) -> Choice:
    parts = parts_of(candidate)
    calls = tuple(calls_of(parts, new_id))
    text = text_of(parts)
    index = field(candidate, "index")
    return Choice(
        content=text if text or not calls else None,
        tool_calls=calls,
        finish_reason=finish_reason(field(candidate, "finishReason"), called=bool(calls)),
        index=index if isinstance(index, int) else position,
    )
