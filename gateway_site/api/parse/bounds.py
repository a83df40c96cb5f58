"""Bounds on the sizes a client controls in a request body, checked on the parsed JSON before
any model validation, admission or upstream work: nesting depth, string length, and the number
of entries of every array or object the gateway reads. Each refusal is a 400 in OpenAI's own
wording (``array_above_max_length``, ...) naming the parameter as the client wrote it.

The operator-tunable bounds come from ``GATEWAY_MAX_*`` settings; the others are OpenAI's
published limits (its OpenAPI description), which the gateway never undercuts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import orjson
from django.conf import settings

from gateway_site.api.errors import RequestError

# OpenAI's own limits (CreateChatCompletionRequest, CreateEmbeddingRequest, Metadata).
MAX_STOP_SEQUENCES = 4
MAX_EMBEDDING_INPUTS = 2048
MAX_METADATA_PAIRS = 16
MAX_METADATA_KEY_CHARS = 64
MAX_METADATA_VALUE_CHARS = 512
# OpenAI documents no bound on logit_bias entries and has accepted at most 300; a tokenizer's
# vocabulary is the natural ceiling of a meaningful map, so this only stops a flood.
MAX_LOGIT_BIAS_ENTRIES = 1024
# The deepest nesting orjson serializes (it raises past it): a body that reached an adapter or
# the cache key deeper than this would fail there, after admission.
ORJSON_MAX_DEPTH = 254
# Up to this size a body's brackets are counted before its depth is measured (see below).
COUNTED_BODY_BYTES = 4096


@dataclass(frozen=True, slots=True)
class BodyBounds:
    """The operator-tunable bounds (docs/api.md, "Request bounds")."""

    json_depth: int
    string_chars: int
    messages: int
    message_items: int
    tools: int
    completion_tokens: int
    embedding_dimensions: int
    embedding_input_tokens: int

    @classmethod
    def from_settings(cls) -> BodyBounds:
        return cls(
            json_depth=settings.GATEWAY_MAX_JSON_DEPTH,
            string_chars=settings.GATEWAY_MAX_STRING_CHARS,
            messages=settings.GATEWAY_MAX_MESSAGES,
            message_items=settings.GATEWAY_MAX_MESSAGE_ITEMS,
            tools=settings.GATEWAY_MAX_TOOLS,
            completion_tokens=settings.GATEWAY_MAX_COMPLETION_TOKENS,
            embedding_dimensions=settings.GATEWAY_MAX_EMBEDDING_DIMENSIONS,
            embedding_input_tokens=settings.GATEWAY_MAX_EMBEDDING_INPUT_TOKENS,
        )


def check_shape(raw: dict[str, object], *, body: bytes, bounds: BodyBounds) -> None:
    """Nesting depth of every top-level field, then the length of every string. A body holds no
    string longer than itself, so only a body longer than the string bound is searched."""
    if _may_nest_deeper(body, limit=bounds.json_depth):
        _check_depth(raw, limit=bounds.json_depth)
    if len(body) > bounds.string_chars:
        _check_strings(raw, limit=bounds.string_chars)


def _may_nest_deeper(body: bytes, *, limit: int) -> bool:
    """A body nests no deeper than it has opening brackets. Counting them clears the usual small
    body in about a microsecond; past a few kilobytes, counting costs as much as measuring."""
    return len(body) > COUNTED_BODY_BYTES or body.count(b"[") + body.count(b"{") > limit


def _check_depth(raw: dict[str, object], *, limit: int) -> None:
    if not _nests_deeper(raw, levels=limit):
        return
    # The body object is level 1, so each top-level container may open ``limit - 1`` levels.
    for name, value in raw.items():
        if isinstance(value, dict | list) and _nests_deeper(value, levels=limit - 1):
            raise RequestError(
                f"Invalid '{name}': nested too deeply. Expected a request body at most {limit} levels deep.",
                param=name,
                code="nesting_above_max_depth",
            )


def _nests_deeper(value: object, *, levels: int) -> bool:
    """Whether ``value`` nests more than ``levels`` containers, itself included. orjson refuses
    to serialize more than ``ORJSON_MAX_DEPTH``: asking it whether ``value`` still serializes
    inside ``ORJSON_MAX_DEPTH - levels`` more levels measures the depth at C speed (a Python walk
    costs several times orjson's whole serialization)."""
    wrapped = value
    for _ in range(ORJSON_MAX_DEPTH - levels):
        wrapped = [wrapped]
    try:
        orjson.dumps(wrapped)
    except orjson.JSONEncodeError:
        return True
    return False


def _check_strings(raw: dict[str, object], *, limit: int) -> None:
    """Searched without building paths; the path of the offending string is built only when
    there is one."""
    if _holds_longer(raw, limit=limit):
        for path, text in _strings(raw, ""):
            check_string_length(text, param=path, limit=limit)


def _holds_longer(value: object, *, limit: int) -> bool:
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if len(node) > limit:
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _strings(node: object, path: str) -> Iterator[tuple[str, str]]:
    """Every string of ``node`` with its path in the client's notation; an object's keys with the
    object's path."""
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield path, str(key)
            yield from _strings(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _strings(value, f"{path}[{index}]")


def check_length(value: object, *, param: str, limit: int) -> None:
    """An array (or object) of at most ``limit`` entries; anything else is left to validation."""
    if not isinstance(value, list | dict) or len(value) <= limit:
        return
    if isinstance(value, list):
        problem, code = "array too long", "array_above_max_length"
        expected = f"an array with maximum length {limit}"
        got = f"an array with length {len(value)}"
    else:
        problem, code = "too many properties", "object_above_max_properties"
        expected = f"an object with at most {limit} properties"
        got = f"an object with {len(value)} properties"
    raise RequestError(
        f"Invalid '{param}': {problem}. Expected {expected}, but got {got} instead.", param=param, code=code
    )


def check_string_length(value: object, *, param: str, limit: int) -> None:
    """A string of at most ``limit`` characters; anything else is left to validation. ``param``
    empty: a key of the body object itself."""
    if isinstance(value, str) and len(value) > limit:
        where = f"'{param}'" if param else "key in the request body"
        raise RequestError(
            f"Invalid {where}: string too long. Expected a string with maximum length {limit}, "
            f"but got a string with length {len(value)} instead.",
            param=param or None,
            code="string_above_max_length",
        )


def check_maximum(value: object, *, param: str, limit: int) -> None:
    """An integer of at most ``limit``; anything else is left to validation."""
    if isinstance(value, int) and not isinstance(value, bool) and value > limit:
        raise RequestError(
            f"Invalid '{param}': integer above maximum value. Expected a value <= {limit}, "
            f"but got {value} instead.",
            param=param,
            code="integer_above_max_value",
        )
