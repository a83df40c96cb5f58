"""The Azure OpenAI adapter's pure functions against recorded payloads (docs/providers.md, "azure")."""

from __future__ import annotations

import orjson
import pytest

from providers.errors import UpstreamProtocolError
from providers.sse import SSEDecoder
from providers.types import DeploymentConfig, ProviderConfig, Usage
from providers.vendors.azure.errors import map_error
from providers.vendors.azure.request import to_upstream
from providers.vendors.azure.response import from_upstream
from providers.vendors.azure.stream import from_chunk
from tests.providers.recorded import fixture, fixture_json

SECRET = "azure-key-SECRET-0123"
DEPLOYMENT = DeploymentConfig(
    id=4,
    provider=ProviderConfig(
        name="azure-east",
        kind="azure",
        base_url="https://myres.openai.azure.com",
        api_key=SECRET,
        api_version="2024-10-21",
    ),
    upstream_model="my gpt4o/deployment",
)


def test_request_goes_to_the_deployment_url_with_api_version_and_api_key():
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "x_vendor": 1}
    url, headers, content = to_upstream(body, DEPLOYMENT, stream=True)
    assert url == (
        "https://myres.openai.azure.com/openai/deployments/my%20gpt4o%2Fdeployment/chat/completions"
        "?api-version=2024-10-21"
    )
    assert headers == {
        "content-type": "application/json",
        "accept": "text/event-stream",
        "accept-encoding": "identity",
        "api-key": SECRET,
    }
    assert "authorization" not in headers
    assert orjson.loads(content) == {
        **body,
        "model": "my gpt4o/deployment",
        "stream_options": {"include_usage": True},
    }


def test_response_loses_the_content_filter_annotations_and_keeps_everything_else():
    completion = from_upstream(fixture("azure", "chat_completion.json"))
    expected = fixture_json("azure", "chat_completion.json")
    del expected["prompt_filter_results"]
    del expected["choices"][0]["content_filter_results"]
    assert orjson.loads(completion.body) == expected
    assert completion.usage == Usage(prompt_tokens=19, completion_tokens=10)


def test_filtered_output_keeps_the_content_filter_finish_reason():
    body = orjson.loads(from_upstream(fixture("azure", "chat_content_filter.json")).body)
    assert body["choices"] == [
        {
            "finish_reason": "content_filter",
            "index": 0,
            "logprobs": None,
            "message": {"content": "Here is how", "refusal": None, "role": "assistant"},
        }
    ]


def test_unusable_response_is_a_protocol_error():
    with pytest.raises(UpstreamProtocolError):
        from_upstream(b'{"error": null}')


def test_stream_drops_the_filter_only_chunk_and_annotations_split_at_every_byte():
    data = fixture("azure", "stream_filtered.sse")

    def run(pieces):
        decoder = SSEDecoder()
        events = [e for piece in pieces for e in decoder.feed(piece)] + decoder.flush()
        return [from_chunk(e.data) for e in events if e.data != b"[DONE]"]

    whole = run([data])
    for cut in range(1, len(data)):
        assert run([data[:cut], data[cut:]]) == whole
    assert whole[0].payload is None
    chunks = [orjson.loads(e.payload) for e in whole[1:]]
    assert [c["choices"][0]["delta"] if c["choices"] else None for c in chunks] == [
        {"content": "", "refusal": None, "role": "assistant"},
        {"content": "Once upon"},
        {},
        None,
    ]
    assert all("content_filter_results" not in c for chunk in chunks for c in chunk["choices"])
    assert chunks[2]["choices"][0]["finish_reason"] == "content_filter"
    assert whole[-1].usage_only and whole[-1].usage == Usage(prompt_tokens=11, completion_tokens=2)


def test_filtered_prompt_is_a_400_with_the_content_filter_code():
    error = map_error(400, fixture("azure", "error_content_filter.json"), {}, DEPLOYMENT)
    assert (error.status, error.error_type, error.code, error.param) == (
        400,
        "invalid_request_error",
        "content_filter",
        "prompt",
    )
    assert error.message.startswith("The response was filtered due to the prompt triggering")


def test_429_is_normalised_and_keeps_both_retry_headers():
    error = map_error(
        429, fixture("azure", "error_429.json"), {"retry-after": "6", "retry-after-ms": "6000"}, DEPLOYMENT
    )
    assert (error.status, error.error_type, error.code, error.headers) == (
        429,
        "rate_limit_error",
        "rate_limit_exceeded",
        {"retry-after": "6", "retry-after-ms": "6000"},
    )


def test_deployment_not_found_keeps_404_and_code():
    error = map_error(404, fixture("azure", "error_404_deployment.json"), {}, DEPLOYMENT)
    assert (error.status, error.code) == (404, "DeploymentNotFound")


def test_auth_failure_and_overload():
    auth = map_error(401, fixture("azure", "error_401.json"), {}, DEPLOYMENT)
    assert (auth.status, auth.code) == (502, "upstream_auth_failed")
    assert SECRET not in auth.message
    busy = map_error(503, b'{"error":{"code":"ServiceUnavailable","message":"busy"}}', {}, DEPLOYMENT)
    assert (busy.status, busy.code, busy.message) == (
        503,
        "upstream_overloaded",
        "The upstream provider 'azure-east' is overloaded: busy",
    )
