"""The Anthropic adapter's pure functions against recorded payloads (docs/providers.md, "anthropic")."""

from __future__ import annotations

import orjson
import pytest

from providers.errors import UnsupportedRequest, UpstreamProtocolError
from providers.translation.translated_stream import SSEFraming
from providers.types import DeploymentConfig, ProviderConfig, Usage
from providers.vendors.anthropic.errors import map_error
from providers.vendors.anthropic.request import DEFAULT_MAX_TOKENS, to_upstream
from providers.vendors.anthropic.response import from_upstream
from providers.vendors.anthropic.stream import AnthropicStreamTranslator
from tests.providers.recorded import fixture, fixture_json, payloads, translate_split_everywhere

SECRET = "sk-ant-api03-SECRET"
DEPLOYMENT = DeploymentConfig(
    id=3,
    provider=ProviderConfig(
        name="claude",
        kind="anthropic",
        base_url="http://10.9.8.7:1234",
        api_key=SECRET,
        api_version="2023-06-01",
    ),
    upstream_model="claude-sonnet-4-20250514",
)
CREATED = 1741570283


def sent(body: dict, *, stream: bool = False) -> dict:
    return orjson.loads(to_upstream(body, DEPLOYMENT, stream=stream)[2])


def chat(**fields: object) -> dict:
    return {"model": "claude-public", "messages": [{"role": "user", "content": "Hi"}], **fields}


def test_full_request_translation_matches_the_recorded_anthropic_request():
    body = fixture_json("openai_requests", "full_chat.json")
    original = orjson.dumps(body)

    url, headers, content = to_upstream(body, DEPLOYMENT, stream=False)

    assert url == "http://10.9.8.7:1234/v1/messages"
    assert headers == {
        "content-type": "application/json",
        "accept": "application/json",
        "accept-encoding": "identity",
        "anthropic-version": "2023-06-01",
        "x-api-key": SECRET,
    }
    assert orjson.loads(content) == fixture_json("anthropic", "request_full_chat.json")
    assert orjson.dumps(body) == original  # the client's body is not changed


def test_streaming_request_and_defaults():
    _, headers, content = to_upstream(
        chat(stream=True, stream_options={"include_usage": True}), DEPLOYMENT, stream=True
    )
    assert orjson.loads(content) == {
        "model": "claude-sonnet-4-20250514",
        "max_tokens": DEFAULT_MAX_TOKENS,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
        "stream": True,
    }
    assert DEFAULT_MAX_TOKENS == 4096
    assert headers["accept"] == "text/event-stream"


def test_api_version_is_the_providers_setting_and_no_key_means_no_header():
    provider = ProviderConfig(name="p", kind="anthropic", base_url="http://h", api_version="2024-10-22")
    _, headers, _ = to_upstream(
        chat(), DeploymentConfig(id=1, provider=provider, upstream_model="m"), stream=False
    )
    assert headers["anthropic-version"] == "2024-10-22"
    assert "x-api-key" not in headers


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"max_tokens": 50}, {"max_tokens": 50}),
        ({"tool_choice": "auto"}, {}),  # without tools, tool_choice is not sent
        ({"response_format": {"type": "text"}}, {}),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {"type": "object"}},
                }
            },
            {"output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}}},
        ),
        ({"stop": ["a", "b"], "top_k": 5}, {"stop_sequences": ["a", "b"], "top_k": 5}),
        ({"n": 1, "seed": 3, "presence_penalty": 1.0, "logit_bias": {"1": 2}}, {}),
    ],
)
def test_optional_fields(fields, expected):
    assert sent(chat(**fields)) == {
        "model": "claude-sonnet-4-20250514",
        "max_tokens": DEFAULT_MAX_TOKENS,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
        **expected,
    }


TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        (None, None, None),
        ("auto", None, {"type": "auto"}),
        ("none", None, {"type": "none"}),
        ("required", None, {"type": "any"}),
        ({"type": "function", "function": {"name": "f"}}, None, {"type": "tool", "name": "f"}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("auto", True, {"type": "auto"}),
    ],
)
def test_tool_choice(choice, parallel, expected):
    fields: dict = {"tools": [TOOL]}
    if choice is not None:
        fields["tool_choice"] = choice
    if parallel is not None:
        fields["parallel_tool_calls"] = parallel
    assert sent(chat(**fields)).get("tool_choice") == expected


def test_consecutive_same_role_messages_are_merged_and_empty_text_dropped():
    body = chat(
        messages=[
            {"role": "user", "content": "a"},
            {"role": "user", "content": [{"type": "text", "text": "b"}]},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"id": "t", "type": "function", "function": {"name": "f", "arguments": ""}}],
            },
            {"role": "assistant", "content": "c"},
        ]
    )
    assert sent(body)["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "t", "name": "f", "input": {}},
                {"type": "text", "text": "c"},
            ],
        },
    ]


@pytest.mark.parametrize(
    ("fields", "param", "message"),
    [
        ({"n": 2}, "n", "The anthropic provider returns one choice per request; 'n' must be 1."),
        (
            {"response_format": {"type": "json_object"}},
            "response_format",
            "response_format 'json_object' is not supported by the anthropic provider; "
            "use json_schema with a schema.",
        ),
        ({"temperature": 1.5}, "temperature", "The anthropic provider takes a temperature between 0 and 1."),
        ({"logprobs": True}, "logprobs", "The anthropic provider does not return log probabilities."),
        (
            {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
            "messages.content.0.type",
            "Content parts of type 'input_audio' are not supported by the anthropic provider.",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "data:image/png,xyz"}}],
                    }
                ]
            },
            "messages.content.image_url",
            "The anthropic provider takes images as http(s) URLs or base64 data URLs "
            "(data:image/png;base64,...).",
        ),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {"id": "t", "type": "function", "function": {"name": "f", "arguments": "[1]"}}
                        ],
                    }
                ]
            },
            "messages.tool_calls.function.arguments",
            "Tool call arguments must be a JSON object encoded as a string.",
        ),
        (
            {"tools": [{"type": "custom", "custom": {"name": "x"}}]},
            "tools.0.type",
            "Only function tools are supported by the anthropic provider.",
        ),
    ],
)
def test_what_cannot_be_honoured_is_a_400(fields, param, message):
    with pytest.raises(UnsupportedRequest) as caught:
        to_upstream(chat(**fields), DEPLOYMENT, stream=False)
    error = caught.value
    assert (error.status, error.error_type, error.code, error.param, error.message) == (
        400,
        "invalid_request_error",
        "unsupported_parameter",
        param,
        message,
    )


def test_tool_use_response():
    result = from_upstream(fixture("anthropic", "message_tool_use.json"), created=CREATED)
    assert orjson.loads(result.body) == {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "object": "chat.completion",
        "created": CREATED,
        "model": "claude-sonnet-4-20250514",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Let me check.",
                    "refusal": None,
                    "tool_calls": [
                        {
                            "id": "toolu_01A09q90qw90lq917835lq9",
                            "type": "function",
                            "function": {
                                "name": "get_weather",
                                "arguments": '{"city":"Paris","unit":"celsius"}',
                            },
                        }
                    ],
                },
                "logprobs": None,
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": 377,
            "completion_tokens": 65,
            "total_tokens": 442,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }
    assert result.usage == Usage(prompt_tokens=377, completion_tokens=65)


def test_text_response_joins_text_blocks_drops_thinking_and_counts_cache_tokens():
    result = from_upstream(fixture("anthropic", "message_text_cached.json"), created=CREATED)
    body = orjson.loads(result.body)
    assert body["choices"][0]["message"] == {
        "role": "assistant",
        "content": "Hi! How can I help?",
        "refusal": None,
    }
    assert body["choices"][0]["finish_reason"] == "stop"
    assert result.usage == Usage(
        prompt_tokens=12 + 100 + 2048, completion_tokens=9, cached_tokens=2048, cache_write_tokens=100
    )
    assert body["usage"]["total_tokens"] == 2169


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("something_new", "stop"),
    ],
)
def test_every_stop_reason(stop_reason, finish):
    message = {**fixture_json("anthropic", "message_text_cached.json"), "stop_reason": stop_reason}
    body = orjson.loads(from_upstream(orjson.dumps(message), created=CREATED).body)
    assert body["choices"][0]["finish_reason"] == finish


@pytest.mark.parametrize("content", [b"<html>", b"[]", b'{"id":"x"}'])
def test_unusable_response_is_a_protocol_error(content):
    with pytest.raises(UpstreamProtocolError):
        from_upstream(content, created=CREATED)


def stream(name: str):
    return translate_split_everywhere(
        fixture("anthropic", name),
        lambda: (AnthropicStreamTranslator(provider="claude", created=CREATED), SSEFraming()),
    )


def test_tool_use_stream_split_at_every_byte():
    events = stream("stream_tool_use.sse")
    base = {
        "id": "msg_019Q1hrJbZG26Fb9BQhrkHEr",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": "claude-sonnet-4-20250514",
    }

    def delta(d, finish=None):
        return {**base, "choices": [{"index": 0, "delta": d, "logprobs": None, "finish_reason": finish}]}

    tool = {"index": 0, "id": "toolu_01NRLabsLyVHZPKxbKvkfSMn", "type": "function"}
    assert payloads(events) == [
        delta({"role": "assistant", "content": ""}),
        delta({"content": "I'll check the weather."}),
        delta({"tool_calls": [{**tool, "function": {"name": "get_weather", "arguments": ""}}]}),
        delta({"tool_calls": [{"index": 0, "function": {"arguments": '{"locati'}}]}),
        delta({"tool_calls": [{"index": 0, "function": {"arguments": 'on": "Paris"}'}}]}),
        delta({}, "tool_calls"),
        {
            **base,
            "choices": [],
            "usage": {
                "prompt_tokens": 377,
                "completion_tokens": 65,
                "total_tokens": 442,
                "prompt_tokens_details": {"cached_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0},
            },
        },
    ]
    assert [e.usage_only for e in events] == [False] * 6 + [True]
    assert events[-1].usage == Usage(prompt_tokens=377, completion_tokens=65)
    assert "".join(e.text for e in events) == "I'll check the weather." + '{"location": "Paris"}'


def test_text_stream_with_thinking_and_cumulative_cache_usage():
    events = stream("stream_text_cached.sse")
    chunks = payloads(events)
    assert [c["choices"][0]["delta"] for c in chunks[:-2]] == [
        {"role": "assistant", "content": ""},
        {"content": "Hello"},
        {"content": " wörld"},
    ]
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert events[-1].usage == Usage(
        prompt_tokens=2160, completion_tokens=4, cached_tokens=2048, cache_write_tokens=100
    )


def test_in_stream_error_event_ends_with_an_openai_error():
    events = stream("stream_error.sse")
    assert [e.error for e in events] == [False, False, True]
    assert orjson.loads(events[-1].payload) == {
        "error": {
            "message": "The upstream provider 'claude' failed mid-stream: Overloaded",
            "type": "upstream_error",
            "param": None,
            "code": "upstream_overloaded",
        }
    }


def test_stream_cut_before_message_stop_is_a_protocol_error():
    translator = AnthropicStreamTranslator(provider="claude", created=CREATED)
    framing = SSEFraming()
    events = [
        e
        for name, data in framing.feed(fixture("anthropic", "stream_cut.sse"))
        for e in translator.feed(name, data)
    ]
    assert [e.text for e in events] == ["", "Cut"]
    with pytest.raises(UpstreamProtocolError) as caught:
        translator.end()
    assert caught.value.message == "The upstream provider 'claude' ended the stream before it was complete."


def test_429_keeps_retry_after():
    error = map_error(
        429, fixture("anthropic", "error_429.json"), {"retry-after": "17", "x-other": "1"}, DEPLOYMENT
    )
    assert (error.status, error.error_type, error.code, error.headers) == (
        429,
        "rate_limit_error",
        "rate_limit_exceeded",
        {"retry-after": "17"},
    )
    assert error.message.startswith("Number of request tokens has exceeded your per-minute rate limit")


def test_529_overloaded_becomes_503():
    error = map_error(529, fixture("anthropic", "error_529.json"), {"retry-after": "3"}, DEPLOYMENT)
    assert (error.status, error.error_type, error.code, error.headers, error.message) == (
        503,
        "upstream_error",
        "upstream_overloaded",
        {"retry-after": "3"},
        "The upstream provider 'claude' is overloaded: Overloaded",
    )


@pytest.mark.parametrize(("status", "name"), [(400, "error_400.json"), (404, "error_404.json")])
def test_4xx_keeps_status_and_message(status, name):
    error = map_error(status, fixture("anthropic", name), {}, DEPLOYMENT)
    assert (error.status, error.error_type, error.code) == (status, "invalid_request_error", None)
    assert error.message == fixture_json("anthropic", name)["error"]["message"]


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failure_is_an_upstream_configuration_error_without_the_credential(status):
    error = map_error(status, fixture("anthropic", "error_401.json"), {}, DEPLOYMENT)
    assert (error.status, error.error_type, error.code) == (502, "upstream_error", "upstream_auth_failed")
    assert error.message == (
        f"The upstream provider 'claude' rejected the gateway's credentials (HTTP {status}); "
        "the gateway administrator must fix the provider configuration."
    )


def test_500_becomes_502_and_secrets_are_redacted():
    error = map_error(500, fixture("anthropic", "error_500.json"), {}, DEPLOYMENT)
    assert (error.status, error.code, error.message) == (
        502,
        "upstream_error",
        "The upstream provider 'claude' failed with HTTP 500: Internal server error",
    )
    leaky = orjson.dumps(
        {
            "type": "error",
            "error": {"type": "invalid_request_error", "message": f"bad {SECRET} at http://10.9.8.7:1234/v1"},
        }
    )
    assert map_error(400, leaky, {}, DEPLOYMENT).message == "bad [redacted] at [redacted]/v1"
