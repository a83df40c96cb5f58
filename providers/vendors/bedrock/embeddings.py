"""``/v1/embeddings`` on Bedrock: Amazon Titan text embeddings through ``InvokeModel``, one signed
call per input."""

from __future__ import annotations

import asyncio

import orjson

from providers.errors import UnsupportedRequest, UpstreamProtocolError
from providers.translation.embeddings import EmbeddingResult, dimensions, openai_list, post_content, texts
from providers.translation.upstream import JsonObject, UpstreamCall
from providers.translation.vendor_json import json_object
from providers.types import DeploymentConfig
from providers.vendors.bedrock.errors import map_error
from providers.vendors.bedrock.request import model_url
from providers.vendors.bedrock.signing import auth_headers


def titan_request(
    text: str, body: JsonObject, deployment: DeploymentConfig
) -> tuple[str, dict[str, str], bytes]:
    if not deployment.upstream_model.startswith("amazon.titan-embed-text"):
        raise UnsupportedRequest(
            "The bedrock provider serves embeddings with Amazon Titan text embeddings models "
            "(amazon.titan-embed-text-*) only.",
            param="model",
        )
    payload: JsonObject = {"inputText": text}
    size = dimensions(body)
    if size is not None:
        payload["dimensions"] = size
    url = model_url(deployment, "invoke")
    content = orjson.dumps(payload)
    headers = {"content-type": "application/json", "accept": "application/json"}
    return url, auth_headers(deployment.provider, url=url, body=content, headers=headers), content


def titan_vector(content: bytes) -> tuple[list[float], int]:
    parsed = json_object(content)
    vector, tokens = parsed.get("embedding"), parsed.get("inputTextTokenCount")
    if not isinstance(vector, list):
        raise UpstreamProtocolError("The upstream provider sent an embeddings answer without 'embedding'.")
    return vector, tokens if isinstance(tokens, int) else 0


async def embed(call: UpstreamCall) -> EmbeddingResult:
    """Titan embeds one text per call: the inputs are sent concurrently, in order."""
    body, deployment = call.body, call.deployment
    requests = [titan_request(text, body, deployment) for text in texts(body, provider="bedrock")]
    answers = await asyncio.gather(*(post_content(call, r, map_error) for r in requests))
    vectors = [titan_vector(answer) for answer in answers]
    return openai_list(
        [vector for vector, _ in vectors],
        model=deployment.upstream_model,
        prompt_tokens=sum(tokens for _, tokens in vectors),
        encoding_format=body.get("encoding_format"),
    )
