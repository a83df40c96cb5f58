"""What OpenAI's specification accepts (CreateChatCompletionRequest, CreateEmbeddingRequest) the
gateway accepts, and forwards as the client wrote it."""

from __future__ import annotations

import copy

import orjson
import pytest

from gateway_site.api.errors import RequestError
from gateway_site.api.parse.chat import parse_chat_request
from gateway_site.api.parse.embeddings import parse_embeddings_request

USER = {"role": "user", "content": "What is the weather?"}
CUSTOM_TOOL = {"type": "custom", "custom": {"name": "run_sql", "format": {"type": "text"}}}


def chat(body: dict[str, object]) -> dict[str, object]:
    return parse_chat_request(orjson.dumps(body), limit=1_000_000).raw


@pytest.mark.parametrize(
    "messages",
    [
        pytest.param(
            [USER, {"role": "assistant", "function_call": {"name": "weather", "arguments": "{}"}}],
            id="assistant-with-only-a-function-call",
        ),
        pytest.param(
            [
                USER,
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "call_1", "type": "custom", "custom": {"name": "run_sql", "input": "SELECT 1"}}
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "1"},
            ],
            id="custom-tool-call",
        ),
        pytest.param(
            [
                USER,
                {
                    "role": "assistant",
                    "tool_calls": [
                        {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                        {"id": "b", "type": "custom", "custom": {"name": "g", "input": ""}},
                    ],
                },
            ],
            id="function-and-custom-tool-calls",
        ),
        pytest.param([USER, {"role": "tool", "tool_call_id": "", "content": "x"}], id="empty-tool-call-id"),
        pytest.param(
            [USER, {"role": "assistant", "audio": {"id": "audio_1"}}], id="assistant-with-only-audio"
        ),
        pytest.param(
            [{"role": "developer", "content": [{"type": "text", "text": "Be brief."}]}, USER], id="developer"
        ),
    ],
)
def test_spec_valid_messages_are_accepted_and_forwarded_untouched(messages):
    body = {"model": "m", "messages": messages, "x-vendor-field": {"kept": [1, 2]}}
    sent = copy.deepcopy(body)
    assert chat(body) == sent


def test_custom_tools_are_accepted_beside_function_tools():
    tools = [
        CUSTOM_TOOL,
        {"type": "custom", "custom": {"name": "grammar", "format": {"type": "grammar", "grammar": {}}}},
        {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}},
    ]
    body = {
        "model": "m",
        "messages": [USER],
        "tools": tools,
        "tool_choice": {"type": "custom", "custom": {"name": "run_sql"}},
    }
    assert chat(body)["tools"] == tools


@pytest.mark.parametrize(
    ("field", "sent", "forwarded"),
    [
        ("n", 2.0, 2),
        ("max_tokens", 16.0, 16),
        ("max_completion_tokens", 1e3, 1000),
        ("seed", -5.0, -5),
        ("top_logprobs", 0.0, 0),
    ],
)
def test_integral_numbers_are_integers_and_reach_the_upstream_as_such(field, sent, forwarded):
    raw = chat({"model": "m", "messages": [USER], field: sent})
    assert raw[field] == forwarded
    assert type(raw[field]) is int


def test_a_fractional_number_is_no_integer():
    with pytest.raises(RequestError) as caught:
        chat({"model": "m", "messages": [USER], "n": 1.5})
    assert (caught.value.message, caught.value.param) == (
        "Invalid value for 'n': Input should be a valid integer.",
        "n",
    )


def test_embeddings_dimensions_one_point_zero_is_one():
    model, raw = parse_embeddings_request(
        b'{"model": "e", "input": ["a", "b"], "dimensions": 1.0, "x": null}', limit=1_000_000
    )
    assert (model, raw) == ("e", {"model": "e", "input": ["a", "b"], "dimensions": 1, "x": None})
    assert type(raw["dimensions"]) is int


@pytest.mark.parametrize(
    "value",
    [
        "text",
        ["a", "b"],
        [1, 2, 3],
        [[1, 2], [3]],
    ],
)
def test_every_embeddings_input_form_is_accepted(value):
    assert (
        parse_embeddings_request(orjson.dumps({"model": "e", "input": value}), limit=1_000_000)[1]["input"]
        == value
    )
