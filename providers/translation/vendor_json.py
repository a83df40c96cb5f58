"""JSON over HTTP with a vendor, for the translating adapters: the headers of a JSON request, and
reading what comes back. An answer or a stream event that is not JSON breaks the protocol
(``UpstreamProtocolError``); error bodies and tool results are read leniently, since anything
may stand there."""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from providers.errors import UpstreamProtocolError


def json_headers(*, stream: bool, key_header: str, api_key: str | None) -> dict[str, str]:
    """A JSON POST that expects JSON back, or SSE when ``stream``, uncompressed (streams are
    relayed from the raw bytes); the provider's key, when it has one, in ``key_header``."""
    headers = {
        "content-type": "application/json",
        "accept": "text/event-stream" if stream else "application/json",
        "accept-encoding": "identity",
    }
    if api_key:
        headers[key_header] = api_key
    return headers


def parse_or_none(text: bytes | str) -> object:
    """The parsed JSON, or None when ``text`` is not JSON."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def json_object(content: bytes) -> dict[str, object]:
    """A whole answer, which must be a JSON object."""
    parsed = parse_or_none(content)
    if not isinstance(parsed, dict):
        raise UpstreamProtocolError("The upstream provider sent a response that is not a JSON object.")
    return parsed


def event_object(data: bytes, *, provider: str) -> dict[str, object] | None:
    """A stream event's payload, which must be JSON; None when that JSON is not an object (the
    event is then ignored)."""
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise UpstreamProtocolError(
            f"The upstream provider '{provider}' sent a stream event that is not JSON."
        ) from None
    return parsed if isinstance(parsed, dict) else None


def count(raw: Mapping[str, object], name: str) -> int:
    """A token count: ``raw[name]`` when it is an integer, else 0."""
    value = raw.get(name)
    return value if isinstance(value, int) else 0
