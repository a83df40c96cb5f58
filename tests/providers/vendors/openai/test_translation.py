"""The OpenAI adapter's pure functions against recorded payloads."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from providers.errors import UpstreamHTTPError, UpstreamProtocolError
from providers.sse import SSEDecoder
from providers.types import DeploymentConfig, Prices, ProviderConfig, Usage
from providers.vendors.openai.errors import map_error
from providers.vendors.openai.request import to_upstream
from providers.vendors.openai.response import from_upstream
from providers.vendors.openai.stream import from_chunk
from tests.providers.recorded import FIXTURES as RECORDED

FIXTURES = RECORDED / "openai"
SECRET = "sk-upstream-SECRET"
BASE_URL = "http://10.1.2.3:9001/v1"
DEPLOYMENT = DeploymentConfig(
    id=7,
    provider=ProviderConfig(name="upstream-a", kind="openai", base_url=BASE_URL, api_key=SECRET),
    upstream_model="gpt-4o-mini-2024-07-18",
    prices=Prices(input_per_million=Decimal("0.15"), output_per_million=Decimal("0.60")),
)


def test_request_swaps_model_keeps_unknown_fields_and_does_not_mutate_input():
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "x_vendor": {"a": 1}}
    url, headers, content = to_upstream(body, DEPLOYMENT, stream=False)
    assert url == f"{BASE_URL}/chat/completions"
    assert headers == {
        "content-type": "application/json",
        "accept": "application/json",
        "authorization": f"Bearer {SECRET}",
    }
    assert orjson.loads(content) == {**body, "model": "gpt-4o-mini-2024-07-18"}
    assert body["model"] == "gpt-4o-mini"


def test_streaming_request_always_asks_for_usage_and_keeps_client_options():
    body = {"model": "m", "messages": [], "stream": True, "stream_options": {"include_obfuscation": False}}
    _, headers, content = to_upstream(body, DEPLOYMENT, stream=True)
    sent = orjson.loads(content)
    assert sent["stream_options"] == {"include_obfuscation": False, "include_usage": True}
    assert headers["accept"] == "text/event-stream"
    assert body["stream_options"] == {"include_obfuscation": False}


def test_no_authorization_header_without_a_key():
    bare = DeploymentConfig(
        id=1, provider=ProviderConfig(name="p", kind="openai", base_url=BASE_URL), upstream_model="m"
    )
    _, headers, _ = to_upstream({"model": "x"}, bare, stream=False)
    assert "authorization" not in headers


def test_response_usage_includes_cached_and_reasoning_tokens_and_body_is_untouched():
    content = (FIXTURES / "chat_completion.json").read_bytes()
    completion = from_upstream(content)
    assert completion.body is content
    assert completion.usage == Usage(
        prompt_tokens=1117, completion_tokens=46, cached_tokens=1024, reasoning_tokens=12
    )


@pytest.mark.parametrize("content", [b"not json", b"[1,2]", b'{"id":"x"}'])
def test_unusable_response_is_a_protocol_error(content):
    with pytest.raises(UpstreamProtocolError):
        from_upstream(content)


def stream_events(name: str):
    decoder = SSEDecoder()
    events = decoder.feed((FIXTURES / name).read_bytes()) + decoder.flush()
    return [from_chunk(e.data) for e in events if e.data != b"[DONE]"]


def test_text_stream_chunks():
    events = stream_events("stream_text.sse")
    assert [e.text for e in events] == ["", "Hello", " wörld", "", ""]
    assert [e.usage_only for e in events] == [False, False, False, False, True]
    assert events[-1].usage == Usage(prompt_tokens=9, completion_tokens=2, cached_tokens=4)
    assert all(e.usage is None for e in events[:-1])
    assert not any(e.error for e in events)


def test_tool_call_stream_passes_argument_deltas_untouched():
    events = stream_events("stream_tool_call.sse")
    deltas = [orjson.loads(e.payload)["choices"][0]["delta"] for e in events if not e.usage_only]
    arguments = "".join(d["tool_calls"][0]["function"]["arguments"] for d in deltas if "tool_calls" in d)
    assert arguments == '{"city":"Paris"}'
    assert events[-1].usage == Usage(prompt_tokens=81, completion_tokens=17)


def test_in_stream_error_object_is_flagged():
    event = from_chunk(b'{"error":{"message":"overloaded","type":"server_error","param":null,"code":null}}')
    assert event.error is True
    assert event.usage is None


def test_upstream_429_passes_through_with_retry_headers():
    content = (FIXTURES / "error_429.json").read_bytes()
    error = map_error(
        429, content, {"retry-after": "6", "retry-after-ms": "6000", "x-other": "1"}, DEPLOYMENT
    )
    assert isinstance(error, UpstreamHTTPError)
    assert (error.status, error.error_type, error.code, error.param) == (
        429,
        "tokens",
        "rate_limit_exceeded",
        None,
    )
    assert error.message.startswith("Rate limit reached for gpt-4o")
    assert error.headers == {"retry-after": "6", "retry-after-ms": "6000"}


def test_upstream_400_keeps_param_and_code():
    error = map_error(400, (FIXTURES / "error_400_context.json").read_bytes(), {}, DEPLOYMENT)
    assert (error.status, error.error_type, error.code, error.param) == (
        400,
        "invalid_request_error",
        "context_length_exceeded",
        "messages",
    )


@pytest.mark.parametrize("status", [401, 403])
def test_upstream_auth_failure_is_a_gateway_configuration_error_without_the_credential(status):
    error = map_error(status, (FIXTURES / "error_401.json").read_bytes(), {}, DEPLOYMENT)
    assert (error.status, error.error_type, error.code) == (502, "upstream_error", "upstream_auth_failed")
    assert "upstream-a" in error.message
    assert "sk-upstr" not in error.message and SECRET not in error.message


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_upstream_5xx_becomes_502(status):
    error = map_error(status, b"<html>bad gateway</html>", {"retry-after": "2"}, DEPLOYMENT)
    assert (error.status, error.code) == (502, "upstream_error")
    assert error.message == f"The upstream provider 'upstream-a' failed with HTTP {status}"
    assert error.headers == {"retry-after": "2"}


def test_error_messages_that_echo_the_key_or_url_are_redacted():
    content = orjson.dumps(
        {"error": {"message": f"bad key {SECRET} at {BASE_URL}/chat", "type": "invalid_request_error"}}
    )
    error = map_error(400, content, {}, DEPLOYMENT)
    assert error.message == "bad key [redacted] at [redacted]/chat"
