"""Every size a client controls is refused at parse time with a 400 in OpenAI's wording, naming
the parameter as the client wrote it; at the bound itself the request is accepted."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import orjson
import pytest

from gateway_site.api.errors import RequestError
from gateway_site.api.parse.bounds import ORJSON_MAX_DEPTH, BodyBounds
from gateway_site.api.parse.chat import parse_chat_request
from gateway_site.api.parse.embeddings import parse_embeddings_request
from tests.conftest import ROOT

USER = {"role": "user", "content": "hi"}
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
SMALL = BodyBounds(
    json_depth=16,
    string_chars=1024,
    messages=3,
    message_items=2,
    tools=2,
    completion_tokens=100,
    embedding_dimensions=64,
    embedding_input_tokens=5,
)


def chat(*, bounds: BodyBounds | None = SMALL, **fields: object):
    body = {"model": "m", "messages": [USER], **fields}
    return parse_chat_request(json.dumps(body).encode(), limit=10_000_000, bounds=bounds)


def embed(*, bounds: BodyBounds | None = SMALL, **fields: object):
    body = {"model": "m", "input": "x", **fields}
    return parse_embeddings_request(json.dumps(body).encode(), limit=10_000_000, bounds=bounds)


def refusal(parse, **fields: object) -> tuple[int, str, str | None, str | None]:
    with pytest.raises(RequestError) as caught:
        parse(**fields)
    error = caught.value
    return error.status, error.message, error.param, error.code


def too_long(param: str, limit: int, length: int) -> tuple[int, str, str, str]:
    message = (
        f"Invalid '{param}': array too long. Expected an array with maximum length {limit}, "
        f"but got an array with length {length} instead."
    )
    return 400, message, param, "array_above_max_length"


def above(param: str, limit: int, value: int) -> tuple[int, str, str, str]:
    message = f"Invalid '{param}': integer above maximum value. Expected a value <= {limit}, "
    message += f"but got {value} instead."
    return 400, message, param, "integer_above_max_value"


def nested(levels: int) -> object:
    """``levels`` nested containers (arrays and objects alternating)."""
    value: object = "leaf"
    for level in range(levels):
        value = [value] if level % 2 else {"k": value}
    return value


def test_settings_hold_the_defaults_that_never_refuse_what_openai_accepts(settings):
    assert BodyBounds.from_settings() == BodyBounds(
        json_depth=64,
        string_chars=10 * 1024 * 1024,
        messages=2048,
        message_items=2048,
        tools=128,
        completion_tokens=1024 * 1024,
        embedding_dimensions=4096,
        embedding_input_tokens=8192,
    )
    settings.GATEWAY_MAX_MESSAGES = 1
    assert refusal(chat, bounds=None, messages=[USER, USER]) == too_long("messages", 1, 2)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"messages": [USER] * 4}, too_long("messages", 3, 4)),
        (
            {"messages": [USER, {"role": "user", "content": [{"type": "text", "text": "a"}] * 3}]},
            too_long("messages[1].content", 2, 3),
        ),
        (
            {
                "messages": [
                    USER,
                    {
                        "role": "assistant",
                        "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": ""}}] * 3,
                    },
                ]
            },
            too_long("messages[1].tool_calls", 2, 3),
        ),
        ({"tools": [TOOL] * 3}, too_long("tools", 2, 3)),
        ({"functions": [{"name": "f"}] * 3}, too_long("functions", 2, 3)),
        ({"stop": ["a", "b", "c", "d", "e"]}, too_long("stop", 4, 5)),
        ({"max_tokens": 101}, above("max_tokens", 100, 101)),
        # Past 64 bits orjson reads an integer as a float: 10**30 arrives as 1e30.
        ({"max_completion_tokens": 10**30}, above("max_completion_tokens", 100, int(1e30))),
        ({"max_tokens": 1e30}, above("max_tokens", 100, int(1e30))),
        (
            {"logit_bias": {str(token): 1 for token in range(1025)}},
            (
                400,
                "Invalid 'logit_bias': too many properties. Expected an object with at most 1024 properties, "
                "but got an object with 1025 properties instead.",
                "logit_bias",
                "object_above_max_properties",
            ),
        ),
        (
            {"metadata": {f"k{i}": "v" for i in range(17)}},
            (
                400,
                "Invalid 'metadata': too many properties. Expected an object with at most 16 properties, "
                "but got an object with 17 properties instead.",
                "metadata",
                "object_above_max_properties",
            ),
        ),
        (
            {"metadata": {"k": "v" * 513}},
            (
                400,
                "Invalid 'metadata.k': string too long. Expected a string with maximum length 512, "
                "but got a string with length 513 instead.",
                "metadata.k",
                "string_above_max_length",
            ),
        ),
        (
            {"metadata": {"k" * 65: "v"}},
            (
                400,
                "Invalid 'metadata': string too long. Expected a string with maximum length 64, "
                "but got a string with length 65 instead.",
                "metadata",
                "string_above_max_length",
            ),
        ),
    ],
)
def test_chat_sizes_over_the_bound_are_refused(fields, expected):
    assert refusal(chat, **fields) == expected


def test_chat_sizes_at_the_bound_are_accepted():
    parts = [{"type": "text", "text": "a"}] * 2
    calls = [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}] * 2
    request = chat(
        messages=[USER, {"role": "assistant", "content": parts, "tool_calls": calls}, USER],
        tools=[TOOL] * 2,
        functions=[{"name": "f"}] * 2,
        stop=["a", "b", "c", "d"],
        max_tokens=100,
        max_completion_tokens=100,
        logit_bias={str(token): -100 for token in range(1024)},
        metadata={f"{i:064d}": "v" * 512 for i in range(16)},
    )
    assert (request.model, len(request.raw["messages"]), len(request.raw["logit_bias"])) == ("m", 3, 1024)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"input": ["a"] * 2049}, too_long("input", 2048, 2049)),
        ({"input": [1] * 6}, too_long("input", 5, 6)),
        ({"input": [[1], [1] * 6]}, too_long("input[1]", 5, 6)),
        ({"dimensions": 65}, above("dimensions", 64, 65)),
        ({"dimensions": 10**9}, above("dimensions", 64, 10**9)),
        ({"dimensions": 1e12}, above("dimensions", 64, 10**12)),
    ],
)
def test_embeddings_sizes_over_the_bound_are_refused(fields, expected):
    assert refusal(embed, **fields) == expected


def test_embeddings_sizes_at_the_bound_are_accepted():
    assert embed(input=["a"] * 2048, dimensions=64)[1]["dimensions"] == 64
    assert embed(input=[1] * 5)[1]["input"] == [1] * 5
    assert embed(input=[[1] * 5] * 2048)[0] == "m"


def test_a_string_longer_than_the_bound_is_refused_wherever_it_is():
    long = "x" * 1025
    assert refusal(chat, messages=[USER, {"role": "user", "content": [{"type": "text", "text": long}]}]) == (
        400,
        "Invalid 'messages[1].content[0].text': string too long. Expected a string with maximum length "
        "1024, but got a string with length 1025 instead.",
        "messages[1].content[0].text",
        "string_above_max_length",
    )
    assert refusal(chat, extra={long: 1})[2:] == ("extra", "string_above_max_length")
    assert (
        chat(messages=[{"role": "user", "content": "x" * 1024}]).raw["messages"][0]["content"] == "x" * 1024
    )


def deep_field(field: str, levels: int) -> dict[str, object]:
    """A body field whose innermost container sits ``levels`` levels deep in the body (the body
    object being level 1)."""
    return {
        "tools": lambda: {"tools": [{**TOOL, "function": {"name": "f", "parameters": nested(levels - 4)}}]},
        "messages": lambda: {
            "messages": [{"role": "user", "content": [{"type": "text", "x": nested(levels - 5)}]}]
        },
        "response_format": lambda: {"response_format": {"type": "json_schema", "x": nested(levels - 2)}},
        "unknown_field": lambda: {"unknown_field": nested(levels - 1)},
    }[field]()


@pytest.mark.parametrize("field", ["tools", "messages", "response_format", "unknown_field"])
def test_a_body_deeper_than_the_bound_is_refused_naming_the_top_level_field(field):
    at_bound = deep_field(field, 16)
    assert chat(**at_bound).raw[field] == at_bound[field]
    assert refusal(chat, **deep_field(field, 17)) == (
        400,
        f"Invalid '{field}': nested too deeply. Expected a request body at most 16 levels deep.",
        field,
        "nesting_above_max_depth",
    )


def deep_body(levels: int) -> bytes:
    """A chat body whose field ``x`` nests arrays down to body level ``levels``."""
    inner = levels - 1
    return (
        b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "x": '
        + b"[" * inner
        + b"]" * inner
        + b"}"
    )


def test_nesting_orjson_cannot_serialize_is_refused_before_any_work():
    """A body nested between the default bound and orjson's serializer limit would pass parsing
    and fail in the adapter or the cache key (a 500 after admission): it is refused at parse."""
    for levels in (65, ORJSON_MAX_DEPTH + 1, 1000):
        with pytest.raises(RequestError) as caught:
            parse_chat_request(deep_body(levels), limit=10_000_000)
        error = caught.value
        assert (error.status, error.param, error.code) == (400, "x", "nesting_above_max_depth")
        assert (
            error.message == "Invalid 'x': nested too deeply. Expected a request body at most 64 levels deep."
        )


def test_an_accepted_body_keeps_room_for_orjsons_serializer():
    """The deepest body accepted still serializes inside the levels an adapter or a cache key may
    wrap around it; one level more than orjson's limit does not (the bound's arithmetic)."""
    wrapped: object = parse_chat_request(deep_body(64), limit=10_000_000).raw
    for _ in range(ORJSON_MAX_DEPTH - 64):
        wrapped = [wrapped]
    assert orjson.loads(orjson.dumps(wrapped)) == wrapped
    with pytest.raises(orjson.JSONEncodeError):
        orjson.dumps([wrapped])


def test_nesting_past_orjsons_parser_limit_is_a_400_too():
    with pytest.raises(RequestError) as caught:
        parse_chat_request(deep_body(1100), limit=10_000_000)
    error = caught.value
    assert (error.status, error.param, error.code) == (400, None, "nesting_above_max_depth")
    assert error.message == "The request body is nested too deeply; the limit is 64 levels."


def test_embeddings_nesting_is_bounded_too():
    assert refusal(embed, extra=nested(20)) == (
        400,
        "Invalid 'extra': nested too deeply. Expected a request body at most 16 levels deep.",
        "extra",
        "nesting_above_max_depth",
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GATEWAY_MAX_JSON_DEPTH": "129"}, "GATEWAY_MAX_JSON_DEPTH must be <= 128, got 129"),
        ({"GATEWAY_MAX_JSON_DEPTH": "7"}, "GATEWAY_MAX_JSON_DEPTH must be >= 8, got 7"),
        ({"GATEWAY_MAX_MESSAGES": "many"}, "GATEWAY_MAX_MESSAGES must be an integer, got 'many'"),
        ({"GATEWAY_MAX_EMBEDDING_DIMENSIONS": "0"}, "GATEWAY_MAX_EMBEDDING_DIMENSIONS must be >= 1, got 0"),
    ],
)
def test_bad_bound_settings_stop_the_process_at_start(env, message, tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "gateway_site.settings",
            "GATEWAY_DATA_DIR": str(tmp_path),
            **env,
        },
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert f"django.core.exceptions.ImproperlyConfigured: {message}" in result.stderr
