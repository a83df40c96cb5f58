"""The Messages dialect's pure parts: the request parsed and translated into the internal chat
body (what it carries, what it loses, what it cannot carry), the answer and the stream rendered
from the internal format, the error envelope; and which deployments get the native request."""

from __future__ import annotations

import orjson
import pytest

from gateway_site.api.dialects.messages.answer import message_from_completion
from gateway_site.api.dialects.messages.envelope import anthropic_status, error_type
from gateway_site.api.dialects.messages.events import MessagesEvents
from gateway_site.api.dialects.messages.request import parse_messages_request
from gateway_site.api.dialects.messages.translation import chat_body
from gateway_site.api.errors import RequestError
from gateway_site.api.parse.bounds import BodyBounds
from providers.errors import UnsupportedRequest
from providers.kinds.registry import native_for
from providers.translation.chunks import ChunkWriter, ToolCall, error_event
from providers.types import (
    ANTHROPIC_MESSAGES,
    DeploymentConfig,
    NativeRequest,
    ProviderConfig,
    StreamEvent,
    Usage,
)

BOUNDS = BodyBounds(
    json_depth=64,
    string_chars=1_000_000,
    messages=8,
    message_items=8,
    tools=4,
    completion_tokens=64_000,
    embedding_dimensions=0,
    embedding_input_tokens=0,
)


def parse(body: dict[str, object], *, headers: dict[str, str] | None = None, count_only: bool = False):
    return parse_messages_request(
        orjson.dumps(body), limit=1_000_000, headers=headers or {}, count_only=count_only, bounds=BOUNDS
    )


def test_a_full_request_translates_into_the_chat_body():
    raw = {
        "model": "claude",
        "max_tokens": 300,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "Use the tool.", "signature": "sig"},
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "3C", "is_error": False},
                    {
                        "type": "document",
                        "source": {"type": "text", "media_type": "text/plain", "data": "Notes"},
                    },
                    {
                        "type": "document",
                        "title": "spec",
                        "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER"},
                    },
                ],
            },
            {"role": "system", "content": "Answer in French."},
        ],
        "stop_sequences": ["END"],
        "temperature": 0.2,
        "top_p": 0.9,
        "tools": [{"name": "weather", "description": "Weather", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": "weather", "disable_parallel_tool_use": True},
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "metadata": {"user_id": "u-1"},
        "service_tier": "auto",
        "output_config": {"effort": "low", "format": {"type": "json_schema", "schema": {"type": "object"}}},
        "stream": True,
    }
    translation = chat_body(raw)
    assert translation.untranslatable == ()
    assert translation.uncarried_bytes == len(b"Use the tool.")
    assert translation.body == {
        "model": "claude",
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_1", "content": "3C"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Notes"},
                    {
                        "type": "file",
                        "file": {"filename": "spec.pdf", "file_data": "data:application/pdf;base64,JVBER"},
                    },
                ],
            },
            {"role": "system", "content": "Answer in French."},
        ],
        "max_tokens": 300,
        "stream": True,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": ["END"],
        "tools": [
            {
                "type": "function",
                "function": {"name": "weather", "parameters": {"type": "object"}, "description": "Weather"},
            }
        ],
        "tool_choice": {"type": "function", "function": {"name": "weather"}},
        "parallel_tool_calls": False,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": {"type": "object"}},
        },
        "user": "u-1",
    }


def test_what_the_chat_body_cannot_carry_is_named_as_the_client_wrote_it():
    raw = {
        "model": "claude",
        "max_tokens": 10,
        "top_k": 5,
        "container": "c-1",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "search_result", "source": "s", "title": "t", "content": []},
                    {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}},
                    {"type": "image", "source": {"type": "file", "file_id": "file_1"}},
                    {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "image", "source": {}}]},
                ],
            }
        ],
        "tools": [{"type": "web_search_20250305", "name": "web_search"}],
        "output_config": {"task_budget": 3},
    }
    assert chat_body(raw).untranslatable == (
        "messages[0].content[0].type",
        "messages[0].content[1].source",
        "messages[0].content[2].source",
        "messages[0].content[3].content[0].type",
        "tools[0].type",
        "output_config.task_budget",
        "top_k",
        "container",
    )


def test_parsing_keeps_the_native_request_and_its_beta_header():
    chat = parse(
        {
            "model": "claude",
            "max_tokens": 2.0,
            "messages": [{"role": "user", "content": "Hi"}],
            "stream": True,
        },
        headers={"anthropic-beta": "b1,b2", "anthropic-version": "2023-06-01", "x-app": "cli"},
    )
    assert (chat.model, chat.stream, chat.include_usage) == ("claude", True, False)
    assert chat.raw == {
        "model": "claude",
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 2,
        "stream": True,
    }
    native = chat.native
    assert native is not None
    assert (native.dialect, native.headers, native.untranslatable, native.streamed) == (
        ANTHROPIC_MESSAGES,
        (("anthropic-beta", "b1,b2"),),
        (),
        True,
    )
    assert native.content == orjson.dumps(
        {
            "model": "claude",
            "max_tokens": 2.0,
            "messages": [{"role": "user", "content": "Hi"}],
            "stream": True,
        }
    )


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "c", "messages": [{"role": "user", "content": "Hi"}]}, "max_tokens"),
        (
            {"model": "c", "max_tokens": 5, "messages": [{"role": "tool", "content": "Hi"}]},
            "messages[0].role",
        ),
        (
            {
                "model": "c",
                "max_tokens": 5,
                "temperature": 1.5,
                "messages": [{"role": "user", "content": "x"}],
            },
            "temperature",
        ),
        (
            {
                "model": "c",
                "max_tokens": 5,
                "tool_choice": {"type": "tool"},
                "messages": [{"role": "user", "content": "x"}],
            },
            "tool_choice",
        ),
        (
            {
                "model": "c",
                "max_tokens": 5,
                "thinking": {"type": "enabled", "budget_tokens": 10},
                "messages": [{"role": "user", "content": "x"}],
            },
            "thinking.budget_tokens",
        ),
        (
            {
                "model": "c",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64"}}]}],
            },
            "messages[0].content[0].source.media_type",
        ),
        ({"model": "c", "max_tokens": 64_001, "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
        ({"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}] * 9}, "messages"),
        (
            {
                "model": "c",
                "max_tokens": 5,
                "tools": [{"name": "t", "input_schema": {}}] * 5,
                "messages": [{"role": "user", "content": "x"}],
            },
            "tools",
        ),
    ],
)
def test_bad_requests_name_the_parameter(body, param):
    with pytest.raises(RequestError) as refused:
        parse(body)
    assert (refused.value.status, refused.value.param) == (400, param)


def test_token_counting_takes_no_output_limit_and_no_stream():
    assert parse({"model": "c", "messages": [{"role": "user", "content": "x"}]}, count_only=True).raw[
        "messages"
    ] == [{"role": "user", "content": "x"}]
    with pytest.raises(RequestError) as streamed:
        parse({"model": "c", "stream": True, "messages": [{"role": "user", "content": "x"}]}, count_only=True)
    assert streamed.value.param == "stream"


def test_an_answer_from_the_chat_format():
    completion = {
        "id": "chatcmpl-42",
        "object": "chat.completion",
        "model": "gpt-4.1",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Here.",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"a":1}'},
                        }
                    ],
                },
                "finish_reason": "length",
            }
        ],
        "usage": {
            "prompt_tokens": 30,
            "completion_tokens": 7,
            "prompt_tokens_details": {"cached_tokens": 10},
        },
    }
    assert orjson.loads(message_from_completion(orjson.dumps(completion), model="claude")) == {
        "id": "msg_42",
        "type": "message",
        "role": "assistant",
        "model": "gpt-4.1",
        "content": [
            {"type": "text", "text": "Here."},
            {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}},
        ],
        "stop_reason": "max_tokens",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 20,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 10,
            "output_tokens": 7,
        },
    }
    refused = {
        "id": "x",
        "choices": [{"message": {"content": None, "refusal": "No."}, "finish_reason": "stop"}],
    }
    message = orjson.loads(message_from_completion(orjson.dumps(refused), model="claude"))
    assert (message["content"], message["stop_reason"], message["model"]) == (
        [{"type": "text", "text": "No."}],
        "refusal",
        "claude",
    )


def events_of(stream: bytes) -> list[tuple[str, dict[str, object]]]:
    out = []
    for frame in stream.decode().split("\n\n"):
        if frame:
            name, data = frame.split("\n")
            out.append((name.removeprefix("event: "), orjson.loads(data.removeprefix("data: "))))
    return out


async def test_a_chat_stream_becomes_anthropic_events():
    writer = ChunkWriter(id="chatcmpl-7", created=1, model="gpt-4.1")
    encoder = MessagesEvents(model="claude")
    chunks = [
        writer.role(),
        writer.text("Hel"),
        writer.text("lo"),
        writer.tool_call(0, ToolCall(id="call_1", name="f", arguments="")),
        writer.tool_arguments(0, '{"a":'),
        writer.tool_arguments(0, "1}"),
        writer.finish("tool_calls"),
        writer.usage(Usage(prompt_tokens=12, completion_tokens=4, cached_tokens=2)),
    ]
    stream = b"".join(encoder.event(chunk) for chunk in chunks) + await encoder.done(None)
    events = events_of(stream)
    assert [(name, data.get("index"), (data.get("delta") or {}).get("type")) for name, data in events] == [
        ("message_start", None, None),
        ("ping", None, None),
        ("content_block_start", 0, None),
        ("content_block_delta", 0, "text_delta"),
        ("content_block_delta", 0, "text_delta"),
        ("content_block_stop", 0, None),
        ("content_block_start", 1, None),
        ("content_block_delta", 1, "input_json_delta"),
        ("content_block_delta", 1, "input_json_delta"),
        ("content_block_stop", 1, None),
        ("message_delta", None, None),
        ("message_stop", None, None),
    ]
    assert events[0][1]["message"]["id"] == "msg_7"
    assert events[6][1]["content_block"] == {"type": "tool_use", "id": "call_1", "name": "f", "input": {}}
    assert events[10][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {
            "input_tokens": 10,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 2,
            "output_tokens": 4,
        },
    }


async def test_native_events_are_relayed_as_they_came_and_errors_in_anthropic_form():
    encoder = MessagesEvents(model="claude")
    frame = b'event: ping\ndata: {"type":"ping"}\n\n'
    assert encoder.event(StreamEvent(payload=None, native=frame)) == frame
    assert encoder.event(StreamEvent(payload=b'{"choices":[]}', native=b"")) == b""
    assert await encoder.done(Usage(prompt_tokens=1, completion_tokens=1)) == b""
    overloaded = error_event("busy", code="upstream_overloaded").payload
    assert overloaded is not None
    assert events_of(encoder.error(overloaded)) == [
        ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}})
    ]


@pytest.mark.parametrize(
    ("status", "mapped", "kind"),
    [
        (400, 400, "invalid_request_error"),
        (401, 401, "authentication_error"),
        (404, 404, "not_found_error"),
        (405, 405, "invalid_request_error"),
        (413, 413, "request_too_large"),
        (429, 429, "rate_limit_error"),
        (500, 500, "api_error"),
        (502, 500, "api_error"),
        (503, 529, "overloaded_error"),
        (504, 504, "timeout_error"),
    ],
)
def test_statuses_and_types_of_the_envelope(status, mapped, kind):
    assert (anthropic_status(status), error_type(anthropic_status(status))) == (mapped, kind)


def deployment(kind: str) -> DeploymentConfig:
    return DeploymentConfig(
        id=1, provider=ProviderConfig(name=kind, kind=kind, base_url="http://x"), upstream_model="m"
    )


def test_only_a_kind_that_speaks_the_dialect_gets_the_native_request():
    native = NativeRequest(dialect=ANTHROPIC_MESSAGES, body={}, content=b"{}", untranslatable=("top_k",))
    assert native_for(deployment("anthropic"), native) is native
    assert native_for(deployment("openai"), None) is None
    with pytest.raises(UnsupportedRequest) as refused:
        native_for(deployment("gemini"), native)
    assert (refused.value.status, refused.value.param) == (400, "top_k")
    carried = NativeRequest(dialect=ANTHROPIC_MESSAGES, body={}, content=b"{}")
    assert native_for(deployment("mock"), carried) is None
