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


def model_spans(content: bytes) -> list[tuple[int, int]]:
    """Where the string values of the top-level ``model`` lie in a JSON object's bytes (their
    quotes included), in order. Strings are skipped whole, so a ``"model"`` inside one, or in a
    nested object, is never taken for it. A body may name ``model`` twice: every one is found,
    so the upstream cannot read another model than the one the gateway routed and priced."""
    leading = _LEADING_MODEL.match(content)
    if leading is not None and content.count(b'"model"') == 1:
        return [leading.span(1)]
    spans: list[tuple[int, int]] = []
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
                spans.append(value.span(1))
    return spans


def with_model(content: bytes, model: str) -> bytes:
    """``content`` with its top-level ``model`` replaced by ``model`` (added first if absent)."""
    encoded = orjson.dumps(model)
    spans = model_spans(content)
    if not spans:
        start = content.index(b"{") + 1
        rest = content[start:].lstrip()
        separator = b"" if rest.startswith(b"}") else b","
        return content[:start] + b'"model":' + encoded + separator + content[start:]
    for start, end in reversed(spans):
        content = content[:start] + encoded + content[end:]
    return content


def sse_frame(event: str, data: bytes) -> bytes:
    """One Server-Sent Event as a vendor sends it (each line of ``data`` a ``data:`` line)."""
    head = f"event: {event}\n".encode() if event else b""
    lines = b"".join(b"data: " + line + b"\n" for line in data.split(b"\n"))
    return head + lines + b"\n"
