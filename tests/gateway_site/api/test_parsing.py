"""Request validation at the boundary: OpenAI's wording, the offending param, unknown fields kept."""

from __future__ import annotations

import orjson
import pytest

from gateway_site.api.errors import PayloadTooLarge, RequestError
from gateway_site.api.parse.chat import parse_chat_request

USER = [{"role": "user", "content": "hi"}]


def parse(body: object, *, limit: int = 10_000):
    return parse_chat_request(orjson.dumps(body), limit=limit)


def test_valid_request_keeps_unknown_fields():
    chat = parse(
        {"model": "m", "messages": USER, "stream": True, "stream_options": {"include_usage": True}, "x": [1]}
    )
    assert (chat.model, chat.stream, chat.include_usage) == ("m", True, True)
    assert chat.raw["x"] == [1]


def test_tool_round_trip_messages_are_accepted():
    messages = [
        *USER,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "{}"},
    ]
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    assert parse({"model": "m", "messages": messages, "tools": tools, "tool_choice": "auto"}).stream is False


@pytest.mark.parametrize(
    ("body", "message", "param"),
    [
        ({"messages": USER}, "Missing required parameter: 'model'.", "model"),
        ({"model": "m"}, "Missing required parameter: 'messages'.", "messages"),
        (
            {"model": "m", "messages": []},
            "Invalid value for 'messages': List should have at least 1 item after validation, not 0.",
            "messages",
        ),
        (
            {"model": "m", "messages": USER, "temperature": 5},
            "Invalid value for 'temperature': Input should be less than or equal to 2.",
            "temperature",
        ),
        (
            {"model": "m", "messages": USER, "temperature": "hot"},
            "Invalid value for 'temperature': Input should be a valid number.",
            "temperature",
        ),
        (
            {"model": "m", "messages": USER, "n": 0},
            "Invalid value for 'n': Input should be greater than or equal to 1.",
            "n",
        ),
        (
            {"model": "m", "messages": USER, "max_tokens": True},
            "Invalid value for 'max_tokens': Input should be a valid integer.",
            "max_tokens",
        ),
        (
            {"model": "m", "messages": [{"role": "user"}]},
            "Invalid value for 'messages[0]': a 'user' message needs 'content'.",
            "messages[0]",
        ),
        (
            {"model": "m", "messages": [{"role": "tool", "content": "x"}]},
            "Invalid value for 'messages[0]': a 'tool' message needs 'tool_call_id'.",
            "messages[0]",
        ),
        (
            {"model": "m", "messages": [{"role": "robot", "content": "x"}]},
            "Invalid value for 'messages[0].role': Input should be 'system', 'developer', 'user', "
            "'assistant', 'tool' or 'function'.",
            "messages[0].role",
        ),
        (
            {"model": "m", "messages": USER, "stream_options": {"include_usage": True}},
            "'stream_options' is only allowed when 'stream' is true.",
            "stream_options",
        ),
    ],
)
def test_invalid_fields_are_400_with_param(body, message, param):
    with pytest.raises(RequestError) as caught:
        parse(body)
    error = caught.value
    assert (error.status, error.error_type, error.message, error.param) == (
        400,
        "invalid_request_error",
        message,
        param,
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "The request body is empty; send a JSON object."),
        (b"[1]", "The request body must be a JSON object."),
    ],
)
def test_body_must_be_a_json_object(raw, message):
    with pytest.raises(RequestError) as caught:
        parse_chat_request(raw, limit=100)
    assert caught.value.message == message


def test_malformed_json():
    with pytest.raises(RequestError) as caught:
        parse_chat_request(b'{"model": ', limit=100)
    assert caught.value.status == 400
    assert caught.value.message.startswith("The request body is not valid JSON")


def test_body_over_the_limit_is_413():
    with pytest.raises(PayloadTooLarge) as caught:
        parse_chat_request(b"x" * 101, limit=100)
    assert (caught.value.status, caught.value.code) == (413, "request_too_large")
    assert caught.value.message == "The request body is 101 bytes; the limit is 100 bytes."
