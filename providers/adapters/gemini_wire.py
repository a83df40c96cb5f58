"""Reading Gemini's answers (PROVIDERS.md §4.4-4.5), shared by the non-streaming and the
streaming translation: both spellings of every key (camelCase as the REST API sends it,
snake_case as some SDK paths do), finish reasons, usage, and tool-call ids that carry the
thought signature Gemini needs back on the next turn."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable

import orjson

from providers.adapters.chunks import ToolCall
from providers.types import Usage

# A tool call's id is "call_<hex>", plus "__ts_<signature>" when Gemini sent a thought
# signature with the call: the client sends the id back with the tool result and the assistant
# message, so the signature returns to Gemini unchanged, whatever the client keeps.
SIGNATURE_MARK = "__ts_"

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

IdFactory = Callable[[], str]


def random_id() -> str:
    return "call_" + secrets.token_hex(8)


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


def tool_call_id(new_id: IdFactory, signature: object) -> str:
    base = new_id()
    return f"{base}{SIGNATURE_MARK}{signature}" if isinstance(signature, str) and signature else base


def signature_of(call_id: str) -> str | None:
    _, mark, signature = call_id.partition(SIGNATURE_MARK)
    return signature if mark and signature else None


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
