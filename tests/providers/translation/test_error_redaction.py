"""What a vendor puts in an error never carries the provider's credentials to the client: every
field of a mapped error (message, type, param, code) and of a mid-stream error event, for every
kind, has them removed by the adapter; retry hints pass only when well-formed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from providers.errors import UpstreamError
from providers.translation.error_policy import retry_headers, stream_error
from providers.translation.translated_stream import Framing, SSEFraming, StreamTranslator, TranslatedStream
from providers.translation.upstream import UpstreamCall
from providers.types import AwsCredentials, DeploymentConfig, ProviderConfig, StreamEvent
from providers.vendors.anthropic import errors as anthropic
from providers.vendors.anthropic.stream import AnthropicStreamTranslator
from providers.vendors.azure import errors as azure
from providers.vendors.azure import stream as azure_stream
from providers.vendors.bedrock import errors as bedrock
from providers.vendors.bedrock.framing import EventStreamFraming
from providers.vendors.bedrock.stream import BedrockStreamTranslator
from providers.vendors.gemini import errors as gemini
from providers.vendors.gemini.stream import GeminiStreamTranslator
from providers.vendors.openai import errors as openai
from providers.vendors.openai import stream as openai_stream
from tests.fakes.eventstream import event, exception

KEY = "opk7Q2mZt9RxLw4VbN8c"  # looks like no known key format
BASE_URL = "http://10.9.8.7:9001"


def deployment(kind: str) -> DeploymentConfig:
    aws = AwsCredentials("AKIDEXAMPLE", KEY, None) if kind == "bedrock" else None
    provider = ProviderConfig(
        name="vendor", kind=kind, base_url=BASE_URL, api_key=None if aws else KEY, aws=aws, region="eu-west-1"
    )
    return DeploymentConfig(id=1, provider=provider, upstream_model="m")


def fields(error: UpstreamError) -> str:
    return json.dumps([error.message, error.error_type, error.param, error.code, error.headers])


ECHO = f"key {KEY} at {BASE_URL}/v1"


@pytest.mark.parametrize("status", [400, 404, 422, 500])
@pytest.mark.parametrize("kind", ["openai", "azure"])
def test_openai_wire_errors_are_scrubbed_in_every_field(kind: str, status: int):
    content = orjson.dumps({"error": {"message": ECHO, "type": ECHO, "param": ECHO, "code": ECHO}})
    adapter = openai if kind == "openai" else azure
    error = adapter.map_error(status, content, {"retry-after": KEY}, deployment(kind))
    assert KEY not in fields(error)
    assert BASE_URL not in fields(error)
    if status < 500:
        redacted = "key [redacted] at [redacted]/v1"
        assert (error.message, error.error_type, error.param, error.code) == (redacted,) * 4
    assert error.headers == {}


def test_azure_429_keeps_a_numeric_retry_hint_and_scrubs_the_message():
    content = orjson.dumps({"error": {"message": ECHO, "code": "429"}})
    error = azure.map_error(429, content, {"retry-after": "7", "retry-after-ms": KEY}, deployment("azure"))
    assert (error.status, error.code, error.message) == (
        429,
        "rate_limit_exceeded",
        "key [redacted] at [redacted]/v1",
    )
    assert error.headers == {"retry-after": "7"}


@pytest.mark.parametrize("status", [400, 429, 503])
def test_gemini_message_and_rpc_status_are_scrubbed(status: int):
    content = orjson.dumps({"error": {"code": status, "message": ECHO, "status": f"BAD_{KEY}"}})
    error = gemini.map_error(status, content, {}, deployment("gemini"))
    assert KEY not in fields(error)
    if status == 400:
        assert (error.message, error.code) == ("key [redacted] at [redacted]/v1", "BAD_[redacted]")


def test_anthropic_message_is_scrubbed():
    content = orjson.dumps({"type": "error", "error": {"type": "invalid_request_error", "message": ECHO}})
    error = anthropic.map_error(400, content, {}, deployment("anthropic"))
    assert error.message == "key [redacted] at [redacted]/v1"


@pytest.mark.parametrize(
    ("status", "name"),
    [
        (400, "ValidationException"),
        (400, f"Bad{KEY}"),
        (408, "ModelTimeoutException"),
        (500, "InternalServerException"),
    ],
)
def test_bedrock_message_and_error_name_are_scrubbed(status: int, name: str):
    content = orjson.dumps({"message": ECHO})
    error = bedrock.map_error(
        status, content, {"x-amzn-errortype": f"{name}:http://internal"}, deployment("bedrock")
    )
    assert KEY not in fields(error)
    assert "key [redacted]" in error.message


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ({"retry-after": "6", "retry-after-ms": "6000.5"}, {"retry-after": "6", "retry-after-ms": "6000.5"}),
        ({"retry-after": "Sun, 06 Nov 1994 08:49:37 GMT"}, {"retry-after": "Sun, 06 Nov 1994 08:49:37 GMT"}),
        ({"retry-after": f"Sun, 06 Nov 1994 08:49:37 {KEY}"}, {}),
        ({"retry-after": f"6 {KEY}", "retry-after-ms": KEY}, {}),
        ({"retry-after-ms": "Sun, 06 Nov 1994 08:49:37 GMT"}, {}),
        ({"x-other": "1"}, {}),
    ],
)
def test_retry_hints_pass_only_when_well_formed(given: dict[str, str], kept: dict[str, str]):
    assert retry_headers(given) == kept


def test_a_stream_error_becomes_openai_s_error_object_scrubbed_and_without_other_members():
    payload = orjson.dumps(
        {"error": {"message": ECHO, "type": ECHO, "param": ECHO, "code": 7, "echo": KEY}, "also": KEY}
    )
    relayed = stream_error(payload, deployment("openai").provider)
    redacted = "key [redacted] at [redacted]/v1"
    assert relayed.error is True
    assert orjson.loads(relayed.payload or b"") == {
        "error": {"message": redacted, "type": redacted, "param": redacted, "code": "7"}
    }


def test_a_stream_error_that_is_not_an_object_gets_a_generic_message():
    relayed = stream_error(b'{"error": ["x"]}', deployment("openai").provider)
    assert orjson.loads(relayed.payload or b"") == {
        "error": {
            "message": "The upstream provider 'vendor' failed mid-stream.",
            "type": "upstream_error",
            "param": None,
            "code": None,
        }
    }


async def collect(events: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [e async for e in events]


def response(body: bytes) -> httpx.Response:
    return httpx.Response(200, stream=httpx.ByteStream(body))


def relayed_error(events: list[StreamEvent]) -> dict[str, object]:
    (error,) = [e for e in events if e.error]
    return orjson.loads(error.payload or b"")["error"]


@pytest.mark.parametrize("kind", ["openai", "azure"])
async def test_openai_wire_mid_stream_error_event_is_scrubbed(kind: str):
    error = {"message": ECHO, "type": "server_error", "param": KEY, "code": KEY}
    body = (
        b'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'
        + b"data: "
        + orjson.dumps({"error": error})
        + b"\n\n"
    )
    call = _call(deployment(kind))
    parse = azure_stream.from_chunk if kind == "azure" else openai_stream.from_chunk
    stream = openai_stream.OpenAIStream(response(body), call, parse=parse)
    events: list[StreamEvent] = []
    with pytest.raises(UpstreamError):  # no [DONE]: incomplete, after the error event
        async for item in stream.events():
            events.append(item)
    assert relayed_error(events) == {
        "message": "key [redacted] at [redacted]/v1",
        "type": "server_error",
        "param": "[redacted]",
        "code": "[redacted]",
    }


def _call(target: DeploymentConfig) -> UpstreamCall:
    return UpstreamCall(deployment=target, body={}, http=None, timeout_seconds=1.0, request_id="r")  # type: ignore[arg-type]


def _translated(kind: str, body: bytes) -> TranslatedStream:
    provider = deployment(kind).provider
    translator: StreamTranslator
    framing: Framing = SSEFraming()
    if kind == "anthropic":
        translator = AnthropicStreamTranslator(provider="vendor", created=1)
    elif kind == "gemini":
        translator = GeminiStreamTranslator(provider="vendor", created=1, model="m")
    else:
        translator = BedrockStreamTranslator(provider="vendor", created=1, model="m", id="x")
        framing = EventStreamFraming()
    return TranslatedStream(response(body), provider=provider, translator=translator, framing=framing)


STREAM_ERRORS = {
    "anthropic": b"event: error\ndata: "
    + orjson.dumps({"type": "error", "error": {"type": "overloaded_error", "message": ECHO}})
    + b"\n\n",
    "gemini": b"data: "
    + orjson.dumps({"error": {"code": 500, "message": ECHO, "status": "INTERNAL"}})
    + b"\n\n",
    "bedrock": event("messageStart", {"role": "assistant"}) + exception("throttlingException", ECHO),
}


@pytest.mark.parametrize("kind", ["anthropic", "gemini", "bedrock"])
async def test_translated_mid_stream_error_event_is_scrubbed(kind: str):
    events = await collect(_translated(kind, STREAM_ERRORS[kind]).events())
    error = relayed_error(events)
    assert (
        error["message"]
        == "The upstream provider 'vendor' failed mid-stream: key [redacted] at [redacted]/v1"
    )
    assert KEY not in json.dumps(error)
