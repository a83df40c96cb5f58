"""``POST /v1/embeddings`` end to end through Daphne with the official openai SDK (which asks
for base64 unless told otherwise) against the fake OpenAI, Azure, Gemini and Bedrock upstreams
and the mock provider; one usage record per request, endpoint "embeddings", with cost."""

from __future__ import annotations

import base64
import struct
from decimal import Decimal

import openai
import pytest

from providers.vendors.mock.embeddings import mock_vector
from tests.e2e.conftest import records
from tests.fakes.azure_upstream import FakeAzureUpstream
from tests.fakes.bedrock_upstream import FakeBedrockUpstream
from tests.fakes.embeddings_wire import EmbeddingsReply, vector
from tests.fakes.gemini_upstream import FakeGeminiUpstream, GeminiError
from tests.fakes.openai_upstream import FakeOpenAIUpstream

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PRICE = Decimal("0.02")  # input, dollars per million tokens


@pytest.fixture
def fakes():
    started = {
        "openai": FakeOpenAIUpstream().start(),
        "azure": FakeAzureUpstream(api_key="az-emb-key").start(),
        "gemini": FakeGeminiUpstream(api_key="AIza-emb").start(),
        "bedrock": FakeBedrockUpstream(access_key="AKIDEMB", secret_key="emb-secret").start(),
    }
    yield started
    for fake in started.values():
        fake.stop()


def deployment(name: str, provider: str, upstream: str) -> str:
    return f"""  - name: {name}
    deployments:
      - {{provider: {provider}, model: "{upstream}", input_per_million: "{PRICE}"}}
"""


@pytest.fixture
def client(fakes, gateway_factory, configure, make_key):
    configure(
        f"""
providers:
  - {{name: oai, kind: openai, base_url: "{fakes["openai"].base_url}", api_key_env: GW_E_OAI}}
  - {{name: az, kind: azure, base_url: "{fakes["azure"].base_url}", api_key_env: GW_E_AZ}}
  - {{name: gem, kind: gemini, base_url: "{fakes["gemini"].base_url}", api_key_env: GW_E_GEM}}
  - {{name: aws, kind: bedrock, base_url: "{fakes["bedrock"].base_url}", region: us-east-1,
      aws_access_key_id_env: GW_E_AWS_ID, aws_secret_access_key_env: GW_E_AWS_SECRET}}
  - {{name: mock, kind: mock}}
models:
{deployment("emb-openai", "oai", "text-embedding-3-small")}
{deployment("emb-azure", "az", "emb-deploy")}
{deployment("emb-gemini", "gem", "gemini-embedding-001")}
{deployment("emb-titan", "aws", "amazon.titan-embed-text-v2:0")}
{deployment("emb-bedrock-chat", "aws", "anthropic.claude-3-haiku-20240307-v1:0")}
{deployment("emb-mock", "mock", "mock-embed")}
"""
    )
    key = make_key("acme")
    gateway = gateway_factory(
        GW_E_OAI="sk-oai",
        GW_E_AZ="az-emb-key",
        GW_E_GEM="AIza-emb",
        GW_E_AWS_ID="AKIDEMB",
        GW_E_AWS_SECRET="emb-secret",
    )
    sdk = openai.OpenAI(base_url=f"{gateway.base_url}/v1", api_key=key.raw, max_retries=0, timeout=30)
    yield sdk
    sdk.close()


def floats(values):
    """What the SDK decodes from base64: float32 values."""
    return list(struct.unpack(f"<{len(values)}f", struct.pack(f"<{len(values)}f", *values)))


def test_every_kind_embeds(client: openai.OpenAI, fakes):
    # OpenAI: the SDK sends encoding_format base64 and decodes it; the body goes through.
    result = client.embeddings.create(model="emb-openai", input=["hello world", "bye"])
    assert [d.embedding for d in result.data] == [vector(0, 4), vector(1, 4)]
    assert (result.usage.prompt_tokens, result.usage.total_tokens) == (8, 8)
    [sent] = fakes["openai"].requests
    assert sent.path == "/v1/embeddings"
    assert sent.body == {
        "model": "text-embedding-3-small",
        "input": ["hello world", "bye"],
        "encoding_format": "base64",
    }
    assert sent.headers["authorization"] == "Bearer sk-oai"

    # Azure: deployment URL, api-key, dimensions, floats asked for explicitly.
    result = client.embeddings.create(model="emb-azure", input="hello", dimensions=3, encoding_format="float")
    assert result.data[0].embedding == vector(0, 3)
    [sent] = fakes["azure"].requests
    assert (sent.path, sent.query, sent.headers["api-key"]) == (
        "/openai/deployments/emb-deploy/embeddings",
        {"api-version": "2024-10-21"},
        "az-emb-key",
    )

    # Gemini: batchEmbedContents; no usage from Gemini, the gateway counts the inputs.
    fakes["gemini"].enqueue(EmbeddingsReply())
    result = client.embeddings.create(model="emb-gemini", input=["hello world", "again"], dimensions=2)
    assert [d.embedding for d in result.data] == [vector(0, 2), vector(1, 2)]
    assert result.usage.prompt_tokens == 3  # the gateway's tokenizer: "hello", " world", "again"
    [sent] = fakes["gemini"].requests
    assert sent.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert sent.body == {
        "requests": [
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": "hello world"}]},
                "outputDimensionality": 2,
            },
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": "again"}]},
                "outputDimensionality": 2,
            },
        ]
    }

    # Bedrock Titan: one signed InvokeModel call per input (the fake verifies each signature).
    fakes["bedrock"].enqueue(EmbeddingsReply(prompt_tokens=3), EmbeddingsReply(prompt_tokens=4))
    result = client.embeddings.create(model="emb-titan", input=["a b", "c d e"], dimensions=256)
    assert [len(d.embedding) for d in result.data] == [256, 256]
    assert result.usage.prompt_tokens == 7
    assert sorted(r.body["inputText"] for r in fakes["bedrock"].requests) == ["a b", "c d e"]
    assert {r.path for r in fakes["bedrock"].requests} == {"/model/amazon.titan-embed-text-v2:0/invoke"}
    assert fakes["bedrock"].violations == []

    # Mock: deterministic vectors; raw base64 on the wire when the client asks for it.
    result = client.embeddings.create(model="emb-mock", input="hello", dimensions=5, encoding_format="float")
    assert result.data[0].embedding == mock_vector("hello", 5)
    raw = client.embeddings.with_raw_response.create(
        model="emb-mock", input="hello", dimensions=5, encoding_format="base64"
    )
    wire = raw.http_response.json()["data"][0]["embedding"]
    assert struct.unpack("<5f", base64.b64decode(wire)) == tuple(floats(mock_vector("hello", 5)))

    rows = records(6)
    assert {r.endpoint for r in rows} == {"embeddings"}
    assert [(r.model, r.prompt_tokens, r.completion_tokens, r.status) for r in rows] == [
        ("emb-openai", 8, 0, 200),
        ("emb-azure", 8, 0, 200),
        ("emb-gemini", 3, 0, 200),
        ("emb-titan", 7, 0, 200),
        ("emb-mock", 1, 0, 200),
        ("emb-mock", 1, 0, 200),
    ]
    assert rows[0].cost_usd == Decimal(8) * PRICE / Decimal(1_000_000)


def test_embedding_errors(client: openai.OpenAI, fakes):
    fakes["gemini"].enqueue(GeminiError(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", [{"retryDelay": "3s"}]))
    with pytest.raises(openai.RateLimitError) as limited:
        client.embeddings.create(model="emb-gemini", input="x")
    assert limited.value.response.headers["retry-after"] == "3"

    with pytest.raises(openai.BadRequestError) as tokens:
        client.embeddings.create(model="emb-gemini", input=[[1, 2, 3]])
    assert (
        tokens.value.body["message"] == "The gemini provider takes 'input' as a string or a list of strings."
    )

    with pytest.raises(openai.BadRequestError) as not_titan:
        client.embeddings.create(model="emb-bedrock-chat", input="x")
    assert not_titan.value.body["param"] == "model"

    with pytest.raises(openai.BadRequestError) as invalid:
        client.embeddings.create(model="emb-mock", input="x", encoding_format="int8")  # type: ignore[arg-type]
    assert invalid.value.body["param"] == "encoding_format"

    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="nope", input="x")
    assert len(fakes["gemini"].requests) == 1
    assert fakes["bedrock"].requests == []
    assert [(r.status, r.endpoint) for r in records(3)] == [
        (429, "embeddings"),
        (400, "embeddings"),
        (400, "embeddings"),
    ]
