"""Reading Bedrock Converse answers (PROVIDERS.md §5.4, §5.6): stop reasons, usage, and the
error name from ``x-amzn-ErrorType``."""

from __future__ import annotations

from collections.abc import Mapping

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


def _count(raw: dict[str, object], name: str) -> int:
    value = raw.get(name)
    return value if isinstance(value, int) else 0


def usage_from(raw: object) -> Usage | None:
    """Prompt = input + cache read + cache write tokens; cached = cache reads."""
    if not isinstance(raw, dict) or not isinstance(raw.get("outputTokens"), int):
        return None
    cached = _count(raw, "cacheReadInputTokens")
    prompt = _count(raw, "inputTokens") + cached + _count(raw, "cacheWriteInputTokens")
    return Usage(prompt_tokens=prompt, completion_tokens=_count(raw, "outputTokens"), cached_tokens=cached)


def error_name(headers: Mapping[str, str], body: object) -> str:
    """As botocore reads it: the ``x-amzn-ErrorType`` header up to ``:``, else the body's
    ``__type`` / ``code`` (after any ``#``)."""
    name = headers.get("x-amzn-errortype", "")
    if not name and isinstance(body, dict):
        name = str(body.get("__type") or body.get("code") or "")
    return name.split(":", 1)[0].rsplit("#", 1)[-1]
