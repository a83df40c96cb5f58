"""The Gemini adapter's pure functions against recorded payloads (docs/providers.md, "gemini")."""

from __future__ import annotations

import itertools

import orjson
import pytest

from providers.errors import UnsupportedRequest, UpstreamProtocolError
from providers.translation.translated_stream import SSEFraming
from providers.types import DeploymentConfig, ProviderConfig, Usage
from providers.vendors.gemini.errors import map_error
from providers.vendors.gemini.request import to_upstream
from providers.vendors.gemini.response import from_upstream
from providers.vendors.gemini.stream import GeminiStreamTranslator
from providers.vendors.gemini.thought_signatures import signature_of
from tests.providers.recorded import fixture, fixture_json, payloads, translate_split_everywhere

SECRET = "AIzaSy-SECRET-0123"
DEPLOYMENT = DeploymentConfig(
    id=5,
    provider=ProviderConfig(
        name="google", kind="gemini", base_url="http://10.0.0.9:80", api_key=SECRET, api_version="v1beta"
    ),
    upstream_model="gemini-2.5-flash",
)
CREATED = 1741570283


def ids():
    counter = itertools.count(1)
    return lambda: f"call_{next(counter):04d}"


def test_signed_tool_round_trip_request_matches_the_recorded_gemini_request():
    body = fixture_json("openai_requests", "signed_tool_round_trip.json")
    url, headers, content = to_upstream(body, DEPLOYMENT, stream=False)
    assert url == "http://10.0.0.9:80/v1beta/models/gemini-2.5-flash:generateContent"
    assert headers == {
        "content-type": "application/json",
        "accept": "application/json",
        "accept-encoding": "identity",
        "x-goog-api-key": SECRET,
    }
    assert orjson.loads(content) == fixture_json("gemini", "request_signed_tool_round_trip.json")


def test_streaming_url_api_version_and_minimal_body():
    provider = ProviderConfig(name="g", kind="gemini", base_url="http://h", api_version="v1")
    deployment = DeploymentConfig(id=1, provider=provider, upstream_model="models/gemini-2.5-pro")
    url, headers, content = to_upstream(
        {"messages": [{"role": "user", "content": "Hi"}]}, deployment, stream=True
    )
    assert url == "http://h/v1/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    assert "x-goog-api-key" not in headers
    assert orjson.loads(content) == {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
    ],
)
def test_tool_choice_modes(choice, config):
    body = {
        "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "tool_choice": choice,
    }
    sent = orjson.loads(to_upstream(body, DEPLOYMENT, stream=False)[2])
    assert sent["toolConfig"] == {"functionCallingConfig": config}
    assert sent["tools"] == [{"functionDeclarations": [{"name": "f"}]}]


def test_json_object_sets_the_mime_type_only():
    body = {"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}}
    assert orjson.loads(to_upstream(body, DEPLOYMENT, stream=False)[2])["generationConfig"] == {
        "responseMimeType": "application/json"
    }


@pytest.mark.parametrize(
    ("content", "param"),
    [
        (
            [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}],
            "messages.content.image_url",
        ),
        ([{"type": "file", "file": {}}], "messages.content.0.type"),
    ],
)
def test_image_urls_and_files_are_refused(content, param):
    with pytest.raises(UnsupportedRequest) as caught:
        to_upstream({"messages": [{"role": "user", "content": content}]}, DEPLOYMENT, stream=False)
    assert (caught.value.status, caught.value.param) == (400, param)


def test_text_response_drops_thoughts_and_maps_usage():
    result = from_upstream(fixture("gemini", "response_text.json"), created=CREATED, model="m", new_id=ids())
    body = orjson.loads(result.body)
    assert body["id"] == "eqeJacCOHJrskdUPl76YoQ0"
    assert body["model"] == "gemini-2.5-flash"
    assert body["created"] == CREATED
    assert body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "The capital of Poland is Warsaw.", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert result.usage == Usage(
        prompt_tokens=1015, completion_tokens=925, cached_tokens=1000, reasoning_tokens=918
    )
    assert body["usage"]["total_tokens"] == 1940


def test_function_calls_get_generated_ids_carrying_the_thought_signature():
    result = from_upstream(
        fixture("gemini", "response_function_call.json"), created=CREATED, model="m", new_id=ids()
    )
    choice = orjson.loads(result.body)["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"] == [
        {
            "id": "call_0001__ts_CiQBjz1rX+sig/A==",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
        },
        {
            "id": "call_0002",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
        },
    ]
    assert signature_of("call_0001__ts_CiQBjz1rX+sig/A==") == "CiQBjz1rX+sig/A=="
    assert signature_of("call_0002") is None


def test_blocked_prompt_is_one_content_filter_choice():
    result = from_upstream(
        fixture("gemini", "response_blocked.json"), created=CREATED, model="m", new_id=ids()
    )
    body = orjson.loads(result.body)
    assert body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": None, "refusal": None},
            "logprobs": None,
            "finish_reason": "content_filter",
        }
    ]
    assert result.usage == Usage(prompt_tokens=8, completion_tokens=0)


def test_snake_case_answers_and_several_candidates():
    result = from_upstream(
        fixture("gemini", "response_snake_case.json"), created=CREATED, model="m", new_id=ids()
    )
    body = orjson.loads(result.body)
    assert (body["id"], body["model"]) == ("snake01", "gemini-2.5-flash")
    assert [(c["index"], c["message"]["content"], c["finish_reason"]) for c in body["choices"]] == [
        (0, "Hi", "length"),
        (1, "Hello", "content_filter"),
    ]
    assert result.usage == Usage(prompt_tokens=5, completion_tokens=2)


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("STOP", "stop"),
        ("FINISH_REASON_UNSPECIFIED", "stop"),
        ("OTHER", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("LANGUAGE", "content_filter"),
        ("IMAGE_SAFETY", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "stop"),
        ("UNEXPECTED_TOOL_CALL", "stop"),
    ],
)
def test_every_finish_reason(reason, finish):
    answer = fixture_json("gemini", "response_text.json")
    answer["candidates"][0]["finishReason"] = reason
    body = orjson.loads(from_upstream(orjson.dumps(answer), created=CREATED, model="m").body)
    assert body["choices"][0]["finish_reason"] == finish


def test_answer_without_candidates_or_block_reason_is_a_protocol_error():
    with pytest.raises(UpstreamProtocolError):
        from_upstream(b'{"usageMetadata": {}}', created=CREATED, model="m")


def stream(name: str):
    return translate_split_everywhere(
        fixture("gemini", name),
        lambda: (
            GeminiStreamTranslator(provider="google", created=CREATED, model="m", new_id=ids()),
            SSEFraming(),
        ),
    )


def test_text_stream_split_at_every_byte_ends_with_the_last_cumulative_usage():
    events = stream("stream_text.sse")
    chunks = payloads(events)
    assert {(c["id"], c["model"], c["created"]) for c in chunks} == {
        ("eqeJacCOHJrskdUPl76YoQ0", "gemini-2.5-flash", CREATED)
    }
    assert [c["choices"][0]["delta"] for c in chunks[:-2]] == [
        {"role": "assistant", "content": ""},
        {"content": "The capital of Poland is"},
        {"content": " Warsaw."},
    ]
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert events[-1].usage == Usage(prompt_tokens=15, completion_tokens=1685, reasoning_tokens=914)


def test_function_call_stream_emits_whole_calls_with_signed_ids():
    events = stream("stream_function_call.sse")
    chunks = payloads(events)
    calls = [t for c in chunks if c["choices"] for t in c["choices"][0]["delta"].get("tool_calls", [])]
    assert calls == [
        {
            "index": 0,
            "id": "call_0001__ts_CiQBjz1rX+sig/A==",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
        },
        {
            "index": 1,
            "id": "call_0002",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
        },
    ]
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert events[-1].usage == Usage(prompt_tokens=60, completion_tokens=20)


def test_stream_without_finish_reason_is_a_protocol_error():
    with pytest.raises(UpstreamProtocolError):
        stream("stream_cut.sse")


def test_in_stream_error():
    events = stream("stream_error.sse")
    assert [e.error for e in events] == [False, False, True]
    assert orjson.loads(events[-1].payload)["error"]["message"] == (
        "The upstream provider 'google' failed mid-stream: The model is overloaded. Please try again later."
    )


def test_429_retry_info_becomes_retry_after_rounded_up():
    error = map_error(429, fixture("gemini", "error_429.json"), {}, DEPLOYMENT)
    assert (error.status, error.code, error.headers) == (429, "rate_limit_exceeded", {"retry-after": "48"})
    assert error.message.startswith("You exceeded your current quota")


def test_invalid_api_key_is_an_upstream_configuration_error():
    error = map_error(400, fixture("gemini", "error_400_api_key.json"), {}, DEPLOYMENT)
    assert (error.status, error.code) == (502, "upstream_auth_failed")
    assert SECRET not in error.message


def test_400_keeps_message_and_rpc_status_and_503_is_overloaded():
    bad = map_error(400, fixture("gemini", "error_400.json"), {}, DEPLOYMENT)
    assert (bad.status, bad.error_type, bad.code) == (400, "invalid_request_error", "INVALID_ARGUMENT")
    assert bad.message.startswith("Please ensure that function call turn comes immediately")
    busy = map_error(503, fixture("gemini", "error_503.json"), {}, DEPLOYMENT)
    assert (busy.status, busy.code) == (503, "upstream_overloaded")
