"""Embeddings translation (PROVIDERS.md §6) against recorded payloads: Gemini
batchEmbedContents, Bedrock Titan, OpenAI pass-through, and the float / base64 encodings."""

from __future__ import annotations

import base64
import struct

import orjson
import pytest

from providers.adapters.embeddings import (
    gemini_request,
    gemini_result,
    mock_result,
    openai_list,
    passthrough_result,
    titan_request,
    titan_vector,
)
from providers.errors import UnsupportedRequest, UpstreamProtocolError
from providers.types import AwsCredentials, DeploymentConfig, ProviderConfig
from tests.providers.recorded import fixture

GEMINI = DeploymentConfig(
    id=1,
    provider=ProviderConfig(
        name="g", kind="gemini", base_url="http://g", api_key="AIza-k", api_version="v1beta"
    ),
    upstream_model="gemini-embedding-001",
)
BEDROCK = DeploymentConfig(
    id=2,
    provider=ProviderConfig(
        name="b", kind="bedrock", base_url="http://b", region="us-east-1", aws=AwsCredentials("AKID", "s")
    ),
    upstream_model="amazon.titan-embed-text-v2:0",
)


def test_openai_list_in_floats_and_in_little_endian_float32_base64():
    floats = orjson.loads(openai_list([[0.5, -1.0]], model="m", prompt_tokens=3, encoding_format=None).body)
    assert floats == {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -1.0]}],
        "model": "m",
        "usage": {"prompt_tokens": 3, "total_tokens": 3},
    }
    encoded = orjson.loads(
        openai_list([[0.5, -1.0]], model="m", prompt_tokens=3, encoding_format="base64").body
    )
    raw = encoded["data"][0]["embedding"]
    assert raw == base64.b64encode(struct.pack("<2f", 0.5, -1.0)).decode()
    assert struct.unpack("<2f", base64.b64decode(raw)) == (0.5, -1.0)


def test_gemini_request_and_answer():
    body = {"model": "x", "input": ["hello world", "bye"], "dimensions": 3, "encoding_format": "float"}
    url, headers, content = gemini_request(body, GEMINI)
    assert url == "http://g/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert headers["x-goog-api-key"] == "AIza-k"
    assert orjson.loads(content) == {
        "requests": [
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": "hello world"}]},
                "outputDimensionality": 3,
            },
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": "bye"}]},
                "outputDimensionality": 3,
            },
        ]
    }
    result = gemini_result(fixture("gemini", "batch_embed_response.json"), body, model="gemini-embedding-001")
    parsed = orjson.loads(result.body)
    assert [d["embedding"] for d in parsed["data"]] == [
        [0.013168523, -0.008711934, -0.046782676],
        [0.5, -0.25, 0.125],
    ]
    assert result.prompt_tokens == 3  # the gateway's tokenizer: "hello", " world", "bye"
    with pytest.raises(UpstreamProtocolError):
        gemini_result(b'{"embeddings": [{}]}', body, model="m")


def test_titan_request_is_signed_and_answer_read():
    url, headers, content = titan_request("hello", {"dimensions": 256}, BEDROCK)
    assert url == "http://b/model/amazon.titan-embed-text-v2:0/invoke"
    assert orjson.loads(content) == {"inputText": "hello", "dimensions": 256}
    assert headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKID/")
    assert titan_vector(fixture("bedrock", "titan_embed_response.json")) == ([0.5, -0.25, 0.125, 0.0625], 6)


def test_only_titan_text_models_embed_on_bedrock():
    chat_model = DeploymentConfig(
        id=3, provider=BEDROCK.provider, upstream_model="anthropic.claude-3-haiku-20240307-v1:0"
    )
    with pytest.raises(UnsupportedRequest) as caught:
        titan_request("x", {}, chat_model)
    assert caught.value.param == "model"


@pytest.mark.parametrize("value", [[1, 2], [[1, 2]], [], None, ["a", 3]])
def test_token_arrays_and_odd_inputs_are_refused_by_translating_kinds(value):
    with pytest.raises(UnsupportedRequest) as caught:
        gemini_request({"input": value}, GEMINI)
    assert caught.value.message == "The gemini provider takes 'input' as a string or a list of strings."


def test_openai_answer_passes_through_untouched():
    content = (
        b'{"object":"list","data":[{"object":"embedding","index":0,"embedding":"AAAAPw=="}],'
        b'"model":"m","usage":{"prompt_tokens":2,"total_tokens":2}}'
    )
    result = passthrough_result(content)
    assert (result.body, result.prompt_tokens) == (content, 2)
    with pytest.raises(UpstreamProtocolError):
        passthrough_result(b'{"object":"list"}')


def test_mock_is_deterministic():
    first = mock_result({"input": ["a", "b"], "dimensions": 3}, model="mock-embed")
    assert first == mock_result({"input": ["a", "b"], "dimensions": 3}, model="mock-embed")
    vectors = [d["embedding"] for d in orjson.loads(first.body)["data"]]
    assert [len(v) for v in vectors] == [3, 3]
    assert vectors[0] != vectors[1]
    assert first.prompt_tokens == 2
