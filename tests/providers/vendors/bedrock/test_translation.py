"""The Bedrock adapter's pure functions against recorded payloads (docs/providers.md, "bedrock"); the SigV4
signature checked with botocore, the event streams decoded by botocore's parser."""

from __future__ import annotations

import orjson
import pytest

from providers.errors import UnsupportedRequest, UpstreamProtocolError, UpstreamTimeout
from providers.translation.translated_stream import translate_all
from providers.types import AwsCredentials, DeploymentConfig, ProviderConfig, Usage
from providers.vendors.bedrock.errors import map_error
from providers.vendors.bedrock.framing import EventStreamFraming
from providers.vendors.bedrock.request import to_upstream
from providers.vendors.bedrock.response import completion_id, from_upstream
from providers.vendors.bedrock.stream import BedrockStreamTranslator
from tests.fakes.bedrock_upstream import verify_sigv4
from tests.providers.recorded import fixture, fixture_json, payloads, translate_split_everywhere

MODEL_ID = "anthropic.claude-3-haiku-20240307-v1:0"
AWS = AwsCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI-SECRET", "session-token-1")
PROVIDER = ProviderConfig(
    name="aws",
    kind="bedrock",
    base_url="https://bedrock-runtime.eu-west-1.amazonaws.com",
    region="eu-west-1",
    aws=AWS,
)
DEPLOYMENT = DeploymentConfig(id=6, provider=PROVIDER, upstream_model=MODEL_ID)
CREATED = 1741570283


def request_body() -> dict:
    body = fixture_json("openai_requests", "signed_tool_round_trip.json")
    del body["n"]
    return body


def test_request_body_matches_the_recorded_converse_request():
    url, _, content = to_upstream(request_body(), DEPLOYMENT, stream=False)
    assert url == (
        "https://bedrock-runtime.eu-west-1.amazonaws.com/model/anthropic.claude-3-haiku-20240307-v1:0/converse"
    )
    assert orjson.loads(content) == fixture_json("bedrock", "request_full_chat.json")


def test_request_is_signed_with_sigv4_for_bedrock_and_verifies():
    url, headers, content = to_upstream(
        {"messages": [{"role": "user", "content": "Hi"}]}, DEPLOYMENT, stream=True
    )
    assert url.endswith("/model/anthropic.claude-3-haiku-20240307-v1:0/converse-stream")
    assert headers["accept"] == "application/vnd.amazon.eventstream"
    assert headers["x-amz-security-token"] == "session-token-1"
    assert headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/bedrock/aws4_request, SignedHeaders=" in headers["authorization"]
    signed = {**headers, "host": "bedrock-runtime.eu-west-1.amazonaws.com"}
    check = {
        "url": url,
        "headers": signed,
        "region": "eu-west-1",
        "access_key": "AKIDEXAMPLE",
        "token": "session-token-1",
    }
    assert verify_sigv4(body=content, secret_key=AWS.secret_access_key, **check) is None
    assert (
        verify_sigv4(body=content + b" ", secret_key=AWS.secret_access_key, **check)
        == "signature does not match"
    )
    assert verify_sigv4(body=content, secret_key="other", **check) == "signature does not match"


def test_an_arn_model_id_stays_one_path_segment():
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-lite-v1:0"
    url, _, _ = to_upstream(
        {"messages": []}, DeploymentConfig(id=1, provider=PROVIDER, upstream_model=arn), stream=False
    )
    assert url.endswith(
        "/model/arn:aws:bedrock:us-east-1:123456789012:inference-profile%2Fus.amazon.nova-lite-v1:0/converse"
    )


def test_bedrock_api_key_is_a_bearer_token():
    provider = ProviderConfig(
        name="aws", kind="bedrock", base_url="http://h", region="us-east-1", api_key="bedrock-key"
    )
    _, headers, _ = to_upstream(
        {"messages": [{"role": "user", "content": "Hi"}]},
        DeploymentConfig(id=1, provider=provider, upstream_model="m"),
        stream=False,
    )
    assert headers == {
        "content-type": "application/json",
        "accept": "application/json",
        "authorization": "Bearer bedrock-key",
    }


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"n": 3}, "n"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}],
                    }
                ]
            },
            "messages.content.image_url",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "data:image/tiff;base64,AAAA"}}
                        ],
                    }
                ]
            },
            "messages.content.image_url",
        ),
    ],
)
def test_what_cannot_be_honoured_is_a_400(fields, param):
    with pytest.raises(UnsupportedRequest) as caught:
        to_upstream({"messages": [{"role": "user", "content": "x"}], **fields}, DEPLOYMENT, stream=False)
    assert (caught.value.status, caught.value.param) == (400, param)


def test_tool_choice_none_keeps_the_tools_without_a_choice_and_empty_tool_results_are_not_blank():
    body = {
        "messages": [
            {"role": "user", "content": "x"},
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "t1", "content": ""},
        ],
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "tool_choice": "none",
    }
    sent = orjson.loads(to_upstream(body, DEPLOYMENT, stream=False)[2])
    assert sent["toolConfig"] == {
        "tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object", "properties": {}}}}}]
    }
    assert sent["messages"][2]["content"] == [
        {"toolResult": {"toolUseId": "t1", "content": [{"text": " "}], "status": "success"}}
    ]


def test_text_response_drops_reasoning_and_counts_cache_tokens():
    result = from_upstream(
        fixture("bedrock", "response_text.json"), created=CREATED, model=MODEL_ID, id="chatcmpl-r1"
    )
    body = orjson.loads(result.body)
    assert (body["id"], body["model"], body["created"]) == ("chatcmpl-r1", MODEL_ID, CREATED)
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "It is 21°C.", "refusal": None}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert result.usage == Usage(
        prompt_tokens=1080, completion_tokens=8, cached_tokens=1000, cache_write_tokens=50
    )


def test_tool_use_response():
    result = from_upstream(
        fixture("bedrock", "response_tool_use.json"), created=CREATED, model=MODEL_ID, id="x"
    )
    choice = orjson.loads(result.body)["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me check."
    assert choice["message"]["tool_calls"] == [
        {
            "id": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
        }
    ]


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("tool_use", "tool_calls"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("malformed_model_output", "stop"),
        ("malformed_tool_use", "stop"),
    ],
)
def test_every_stop_reason(reason, finish):
    answer = {**fixture_json("bedrock", "response_text.json"), "stopReason": reason}
    body = orjson.loads(from_upstream(orjson.dumps(answer), created=CREATED, model="m", id="x").body)
    assert body["choices"][0]["finish_reason"] == finish


def test_completion_id_comes_from_the_request_id_header():
    assert completion_id({"x-amzn-requestid": "abc-123"}) == "chatcmpl-abc-123"
    assert completion_id({}).startswith("chatcmpl-")


def test_unusable_response_is_a_protocol_error():
    with pytest.raises(UpstreamProtocolError):
        from_upstream(b'{"output": {}}', created=CREATED, model="m", id="x")


def stream(name: str):
    return translate_split_everywhere(
        fixture("bedrock", name),
        lambda: (
            BedrockStreamTranslator(provider="aws", created=CREATED, model=MODEL_ID, id="chatcmpl-s1"),
            EventStreamFraming(),
        ),
    )


def test_text_stream_split_at_every_byte():
    events = stream("stream_text.bin")
    chunks = payloads(events)
    assert [c["choices"][0]["delta"] for c in chunks[:-2]] == [
        {"role": "assistant", "content": ""},
        {"content": "Hello"},
        {"content": " wörld"},
    ]
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert {c["id"] for c in chunks} == {"chatcmpl-s1"}
    assert events[-1].usage == Usage(prompt_tokens=1029, completion_tokens=2, cached_tokens=1024)


def test_tool_use_stream():
    chunks = payloads(stream("stream_tool_use.bin"))
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[2] == {
        "tool_calls": [
            {
                "index": 0,
                "id": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
                "type": "function",
                "function": {"name": "get_weather", "arguments": ""},
            }
        ]
    }
    assert "".join(d["tool_calls"][0]["function"]["arguments"] for d in deltas[3:5]) == '{"city":"Paris"}'
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"]["total_tokens"] == 110


def test_exception_frame_is_an_in_stream_error():
    events = stream("stream_exception.bin")
    assert [e.error for e in events] == [False, False, True]
    assert orjson.loads(events[-1].payload)["error"]["message"] == (
        "The upstream provider 'aws' failed mid-stream: Too many tokens, please wait before trying again."
    )


def test_stream_cut_before_message_stop_is_a_protocol_error():
    with pytest.raises(UpstreamProtocolError):
        stream("stream_cut.bin")


def test_corrupt_frame_is_a_protocol_error():
    data = bytearray(fixture("bedrock", "stream_text.bin"))
    data[30] ^= 0xFF
    translator = BedrockStreamTranslator(provider="aws", created=CREATED, model="m", id="x")
    with pytest.raises(UpstreamProtocolError):
        translate_all(translator, EventStreamFraming(), [bytes(data)])


def error(status, name, fixture_name):
    headers = (
        {"x-amzn-errortype": f"{name}:http://internal.amazon.com/coral/com.amazon.bedrock/"} if name else {}
    )
    return map_error(status, fixture("bedrock", fixture_name), headers, DEPLOYMENT)


def test_error_mapping():
    throttled = error(429, "ThrottlingException", "error_throttling.json")
    assert (throttled.status, throttled.code, throttled.message) == (
        429,
        "rate_limit_exceeded",
        "Too many requests, please wait before trying again.",
    )
    assert (
        error(429, "ModelNotReadyException", "error_throttling.json").status,
        error(503, "ServiceUnavailableException", "error_throttling.json").code,
    ) == (503, "upstream_overloaded")
    invalid = error(400, "ValidationException", "error_validation.json")
    assert (invalid.status, invalid.code) == (400, "ValidationException")
    assert (error(404, "ResourceNotFoundException", "error_validation.json").code) == "model_not_found"
    denied = error(403, "UnrecognizedClientException", "error_access_denied.json")
    assert (denied.status, denied.code) == (502, "upstream_auth_failed")
    assert AWS.secret_access_key not in denied.message
    assert isinstance(error(408, "ModelTimeoutException", "error_validation.json"), UpstreamTimeout)
    assert (error(424, "ModelErrorException", "error_validation.json").status) == 502
    assert (error(500, "InternalServerException", "error_validation.json").status) == 502
    assert error(400, "", "error_validation.json").code is None
