"""Gemini's ``batchEmbedContents`` against recorded payloads (docs/providers.md, "Embeddings")."""

from __future__ import annotations

import orjson
import pytest

from providers.errors import UnsupportedRequest, UpstreamProtocolError
from providers.types import DeploymentConfig, ProviderConfig
from providers.vendors.gemini.embeddings import gemini_request, gemini_result
from tests.providers.recorded import fixture

GEMINI = DeploymentConfig(
    id=1,
    provider=ProviderConfig(
        name="g", kind="gemini", base_url="http://g", api_key="AIza-k", api_version="v1beta"
    ),
    upstream_model="gemini-embedding-001",
)


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


@pytest.mark.parametrize("value", [[1, 2], [[1, 2]], [], None, ["a", 3]])
def test_token_arrays_and_odd_inputs_are_refused_by_translating_kinds(value):
    with pytest.raises(UnsupportedRequest) as caught:
        gemini_request({"input": value}, GEMINI)
    assert caught.value.message == "The gemini provider takes 'input' as a string or a list of strings."
