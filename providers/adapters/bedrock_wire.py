"""Reading Bedrock Converse answers (PROVIDERS.md §5.4, §5.6): stop reasons, usage, and the
error name from ``x-amzn-ErrorType``."""

from __future__ import annotations

from collections.abc import Mapping

from providers.adapters.vendor_json import count
from providers.types import Usage

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


def error_name(headers: Mapping[str, str], body: object) -> str:
    """As botocore reads it: the ``x-amzn-ErrorType`` header up to ``:``, else the body's
    ``__type`` / ``code`` (after any ``#``)."""
    name = headers.get("x-amzn-errortype", "")
    if not name and isinstance(body, dict):
        name = str(body.get("__type") or body.get("code") or "")
    return name.split(":", 1)[0].rsplit("#", 1)[-1]
