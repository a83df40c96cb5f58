"""Amazon Titan text embeddings on Bedrock against recorded payloads (docs/providers.md,
"Embeddings")."""

from __future__ import annotations

import orjson
import pytest

from providers.errors import UnsupportedRequest
from providers.types import AwsCredentials, DeploymentConfig, ProviderConfig
from providers.vendors.bedrock.embeddings import titan_request, titan_vector
from tests.providers.recorded import fixture

BEDROCK = DeploymentConfig(
    id=2,
    provider=ProviderConfig(
        name="b", kind="bedrock", base_url="http://b", region="us-east-1", aws=AwsCredentials("AKID", "s")
    ),
    upstream_model="amazon.titan-embed-text-v2:0",
)


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
