"""A refused body names the parameter as the client wrote it, in OpenAI's notation
(``messages[0].content``): never pydantic's internal location (``messages.0.content.str``,
union members, discriminator tags, model class names)."""

from __future__ import annotations

import orjson
import pytest

from gateway_site.api.errors import RequestError
from gateway_site.api.parse.chat import parse_chat_request
from gateway_site.api.parse.embeddings import parse_embeddings_request

USER = {"role": "user", "content": "hi"}


def chat_error(**fields: object) -> tuple[str, str | None]:
    with pytest.raises(RequestError) as caught:
        parse_chat_request(orjson.dumps({"model": "m", "messages": [USER], **fields}), limit=1_000_000)
    assert (caught.value.status, caught.value.error_type) == (400, "invalid_request_error")
    return caught.value.message, caught.value.param


def embeddings_error(**fields: object) -> tuple[str, str | None]:
    with pytest.raises(RequestError) as caught:
        parse_embeddings_request(orjson.dumps({"model": "e", **fields}), limit=1_000_000)
    return caught.value.message, caught.value.param


@pytest.mark.parametrize(
    ("fields", "message", "param"),
    [
        (
            {"messages": [USER, {"role": "user", "content": 5}]},
            "Invalid value for 'messages[1].content': Input should be a string or an array.",
            "messages[1].content",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, 7]}]},
            "Invalid value for 'messages[0].content[1]': Input should be an object.",
            "messages[0].content[1]",
        ),
        (
            {"messages": "hello"},
            "Invalid value for 'messages': Input should be an array.",
            "messages",
        ),
        (
            {"messages": [USER, 3]},
            "Invalid value for 'messages[1]': Input should be an object.",
            "messages[1]",
        ),
        (
            {"messages": [USER, {"role": "assistant"}]},
            "Invalid value for 'messages[1]': an 'assistant' message needs 'content', 'tool_calls' or "
            "'function_call'.",
            "messages[1]",
        ),
        (
            {"messages": [USER, {"role": "assistant", "tool_calls": [{"id": "c", "type": "function"}]}]},
            "Missing required parameter: 'messages[1].tool_calls[0].function'.",
            "messages[1].tool_calls[0].function",
        ),
        (
            {
                "messages": [
                    USER,
                    {
                        "role": "assistant",
                        "tool_calls": [{"id": "c", "type": "custom", "custom": {"name": "g"}}],
                    },
                ]
            },
            "Missing required parameter: 'messages[1].tool_calls[0].custom.input'.",
            "messages[1].tool_calls[0].custom.input",
        ),
        (
            {
                "messages": [
                    USER,
                    {
                        "role": "assistant",
                        "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": {}}}],
                    },
                ]
            },
            "Invalid value for 'messages[1].tool_calls[0].function.arguments': "
            "Input should be a valid string.",
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            {"messages": [USER, {"role": "assistant", "function_call": {"name": "f"}}]},
            "Missing required parameter: 'messages[1].function_call.arguments'.",
            "messages[1].function_call.arguments",
        ),
        (
            # The function payload is a key named like the tag of its kind: still the client's path.
            {"tools": [{"function": {"name": "f"}}]},
            "Missing required parameter: 'tools[0].type'.",
            "tools[0].type",
        ),
        (
            {"tools": [{"type": "function", "function": {"name": ""}}]},
            "Invalid value for 'tools[0].function.name': String should have at least 1 character.",
            "tools[0].function.name",
        ),
        (
            {"tools": [{"type": "custom"}]},
            "Missing required parameter: 'tools[0].custom'.",
            "tools[0].custom",
        ),
        (
            {"tools": ["f"]},
            "Invalid value for 'tools[0]': Input should be an object.",
            "tools[0]",
        ),
        (
            {"stop": 5},
            "Invalid value for 'stop': Input should be a string or an array.",
            "stop",
        ),
        (
            {"stop": ["a", 5]},
            "Invalid value for 'stop[1]': Input should be a valid string.",
            "stop[1]",
        ),
        (
            {"metadata": {"k": 5}},
            "Invalid value for 'metadata.k': Input should be a valid string.",
            "metadata.k",
        ),
        (
            {"stream_options": {"include_usage": "yes"}, "stream": True},
            "Invalid value for 'stream_options.include_usage': Input should be a valid boolean.",
            "stream_options.include_usage",
        ),
    ],
)
def test_chat_errors_name_the_clients_parameter(fields, message, param):
    assert chat_error(**fields) == (message, param)


@pytest.mark.parametrize(
    ("fields", "message", "param"),
    [
        ({}, "Missing required parameter: 'input'.", "input"),
        (
            {"input": {"text": "a"}},
            "Invalid value for 'input': Input should be a string or an array.",
            "input",
        ),
        (
            {"input": ["a", ""]},
            "Invalid value for 'input[1]': String should have at least 1 character.",
            "input[1]",
        ),
        (
            {"input": [[1, 2], [3, "x"]]},
            "Invalid value for 'input[1][1]': Input should be a valid integer.",
            "input[1][1]",
        ),
        (
            {"input": "a", "dimensions": "8"},
            "Invalid value for 'dimensions': Input should be a valid integer.",
            "dimensions",
        ),
        (
            {"input": "a", "dimensions": 0},
            "Invalid value for 'dimensions': Input should be greater than or equal to 1.",
            "dimensions",
        ),
    ],
)
def test_embeddings_errors_name_the_clients_parameter(fields, message, param):
    assert embeddings_error(**fields) == (message, param)
