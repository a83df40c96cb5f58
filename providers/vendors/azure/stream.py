"""Azure's stream chunks as OpenAI's: content-filter annotations removed, filter-only chunks
dropped."""

from __future__ import annotations

import orjson

from providers.translation.vendor_json import json_object
from providers.types import StreamEvent
from providers.vendors.azure.response import strip_filters
from providers.vendors.openai import stream as openai


def from_chunk(data: bytes) -> StreamEvent:
    parsed = json_object(data)
    if "error" in parsed and not parsed.get("choices"):
        return StreamEvent(payload=data, error=True)
    if not parsed.get("choices") and parsed.get("usage") is None:
        return StreamEvent(payload=None)  # a content-filter-only chunk: nothing for the client
    return openai.from_chunk(orjson.dumps(strip_filters(parsed)))
