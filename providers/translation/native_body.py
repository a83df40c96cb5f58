"""A request body a client wrote in a vendor's own format, sent on as written: only the value of
its top-level ``model`` is replaced (by the deployment's upstream model), in the bytes, so every
other byte (field order, spacing, escapes, numbers) reaches the upstream as the client sent it.
And a vendor's SSE event written back as bytes, for the events relayed as they came."""

from __future__ import annotations

import re

import orjson

# A JSON string (the unrolled form: fast on long strings), or a bracket.
_STRING = rb'"[^"\\]*(?:\\.[^"\\]*)*"'
_TOKEN = re.compile(_STRING + rb"|[{}\[\]]")
_COLON = re.compile(rb"\s*:\s*(" + _STRING + rb")")
# The common case, ``{"model": "...", ...}``: no scan needed.
_LEADING_MODEL = re.compile(rb'\s*\{\s*"model"' + _COLON.pattern)


def model_span(content: bytes) -> tuple[int, int] | None:
    """Where the string value of the top-level ``model`` lies in a JSON object's bytes (its
    quotes included); None when there is no such string. Strings are skipped whole, so a
    ``"model"`` inside one, or in a nested object, is never taken for it."""
    leading = _LEADING_MODEL.match(content)
    if leading is not None:
        return leading.span(1)
    depth = 0
    for token in _TOKEN.finditer(content):
        first = content[token.start()]
        if first in b"{[":
            depth += 1
        elif first in b"}]":
            depth -= 1
        elif depth == 1 and token.group() == b'"model"':
            value = _COLON.match(content, token.end())
            if value is not None:
                return value.span(1)
    return None


def with_model(content: bytes, model: str) -> bytes:
    """``content`` with its top-level ``model`` replaced by ``model`` (added first if absent)."""
    encoded = orjson.dumps(model)
    span = model_span(content)
    if span is None:
        start = content.index(b"{") + 1
        rest = content[start:].lstrip()
        separator = b"" if rest.startswith(b"}") else b","
        return content[:start] + b'"model":' + encoded + separator + content[start:]
    return content[: span[0]] + encoded + content[span[1] :]


def sse_frame(event: str, data: bytes) -> bytes:
    """One Server-Sent Event as a vendor sends it (each line of ``data`` a ``data:`` line)."""
    head = f"event: {event}\n".encode() if event else b""
    lines = b"".join(b"data: " + line + b"\n" for line in data.split(b"\n"))
    return head + lines + b"\n"
