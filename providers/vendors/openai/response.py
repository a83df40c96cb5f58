"""An OpenAI answer as it comes back: passed on untouched, its usage read for accounting."""

from __future__ import annotations

import orjson

from providers.errors import UpstreamProtocolError
from providers.types import Completion, Usage


def parse_usage(raw: object) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    prompt = raw.get("prompt_tokens")
    completion = raw.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    prompt_details = raw.get("prompt_tokens_details")
    completion_details = raw.get("completion_tokens_details")
    cached = prompt_details.get("cached_tokens") if isinstance(prompt_details, dict) else 0
    reasoning = completion_details.get("reasoning_tokens") if isinstance(completion_details, dict) else 0
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=cached if isinstance(cached, int) else 0,
        reasoning_tokens=reasoning if isinstance(reasoning, int) else 0,
    )


def load_object(content: bytes) -> dict[str, object]:
    try:
        parsed = orjson.loads(content)
    except orjson.JSONDecodeError:
        raise UpstreamProtocolError("The upstream provider sent a response that is not JSON.") from None
    if not isinstance(parsed, dict):
        raise UpstreamProtocolError("The upstream provider sent a response that is not an object.")
    return parsed


def from_upstream(content: bytes) -> Completion:
    parsed = load_object(content)
    if not isinstance(parsed.get("choices"), list):
        raise UpstreamProtocolError("The upstream provider sent a completion without choices.")
    return Completion(body=content, usage=parse_usage(parsed.get("usage")))
