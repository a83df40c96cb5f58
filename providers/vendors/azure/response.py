"""Azure's answer as OpenAI's, without the content-filter annotations (``prompt_filter_results``,
``content_filter_results``) so clients cannot tell the difference."""

from __future__ import annotations

import orjson

from providers.errors import UpstreamProtocolError
from providers.translation.vendor_json import json_object
from providers.types import Completion
from providers.vendors.openai import response as openai

_FILTER_KEYS = ("prompt_filter_results", "prompt_annotations")


def strip_filters(parsed: dict[str, object]) -> dict[str, object]:
    cleaned = {k: v for k, v in parsed.items() if k not in _FILTER_KEYS}
    choices = parsed.get("choices")
    if isinstance(choices, list):
        cleaned["choices"] = [
            {k: v for k, v in c.items() if k != "content_filter_results"} if isinstance(c, dict) else c
            for c in choices
        ]
    return cleaned


def from_upstream(content: bytes) -> Completion:
    parsed = json_object(content)
    if not isinstance(parsed.get("choices"), list):
        raise UpstreamProtocolError("The upstream provider sent a completion without choices.")
    return Completion(body=orjson.dumps(strip_filters(parsed)), usage=openai.parse_usage(parsed.get("usage")))
