"""``/v1/embeddings`` for every kind that has embeddings (PROVIDERS.md §6): OpenAI and Azure
pass the request and answer through (model swapped, URL and auth rewritten); Gemini
(``batchEmbedContents``), Bedrock (Titan text embeddings, ``InvokeModel``, one call per input)
and the mock provider are translated. The answer is always OpenAI's list, floats or base64
(little-endian float32) as the client asked; upstreams that report no token usage are counted
with the gateway's tokenizer. Anthropic has no embeddings API: a 400."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import orjson

from providers.adapters import azure, bedrock, gemini, openai
from providers.adapters.base import ErrorMap, JsonObject, UpstreamCall, post
from providers.adapters.bedrock_request import auth_headers
from providers.adapters.vendor_json import json_object
from providers.errors import UnsupportedRequest, UpstreamProtocolError
from providers.tokens import count_tokens
from providers.types import DeploymentConfig

MOCK_DIMENSIONS = 8


@dataclass(frozen=True, slots=True)
class EmbeddingResult:
    """The OpenAI-shaped answer to return and the prompt tokens it used."""

    body: bytes
    prompt_tokens: int


def texts(body: JsonObject, *, provider: str) -> list[str]:
    """The inputs as strings; token-array inputs only work with OpenAI-compatible upstreams."""
    value = body.get("input")
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(item, str) for item in items):
        raise UnsupportedRequest(
            f"The {provider} provider takes 'input' as a string or a list of strings.", param="input"
        )
    return [str(item) for item in items]


def dimensions(body: JsonObject) -> int | None:
    value = body.get("dimensions")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def openai_list(
    vectors: Sequence[Sequence[float]], *, model: str, prompt_tokens: int, encoding_format: object
) -> EmbeddingResult:
    data = [
        {"object": "embedding", "index": index, "embedding": _encode(vector, encoding_format)}
        for index, vector in enumerate(vectors)
    ]
    usage = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}
    body = {"object": "list", "data": data, "model": model, "usage": usage}
    return EmbeddingResult(body=orjson.dumps(body), prompt_tokens=prompt_tokens)


def _encode(vector: Sequence[float], encoding_format: object) -> list[float] | str:
    if encoding_format == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
    return list(vector)


def passthrough_result(content: bytes) -> EmbeddingResult:
    """An OpenAI-shaped answer (OpenAI, Azure), returned untouched."""
    parsed = json_object(content)
    usage = parsed.get("usage")
    tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    if not isinstance(parsed.get("data"), list):
        raise UpstreamProtocolError("The upstream provider sent an embeddings answer without data.")
    return EmbeddingResult(body=content, prompt_tokens=tokens if isinstance(tokens, int) else 0)


def gemini_request(body: JsonObject, deployment: DeploymentConfig) -> tuple[str, dict[str, str], bytes]:
    model = f"models/{deployment.upstream_model.removeprefix('models/')}"
    size = dimensions(body)
    requests = []
    for text in texts(body, provider="gemini"):
        item: JsonObject = {"model": model, "content": {"parts": [{"text": text}]}}
        if size is not None:
            item["outputDimensionality"] = size
        requests.append(item)
    url = gemini.model_url(deployment, "batchEmbedContents")
    return url, gemini.headers_for(deployment), orjson.dumps({"requests": requests})


def gemini_result(content: bytes, body: JsonObject, *, model: str) -> EmbeddingResult:
    """Gemini reports no usage: the prompt tokens are the gateway's count of the inputs."""
    embeddings = json_object(content).get("embeddings")
    vectors: list[list[float]] = []
    for item in embeddings if isinstance(embeddings, list) else []:
        values = item.get("values") if isinstance(item, dict) else None
        if not isinstance(values, list):
            raise UpstreamProtocolError("The upstream provider sent an embedding without values.")
        vectors.append(values)
    if not vectors:
        raise UpstreamProtocolError("The upstream provider sent an embeddings answer without values.")
    tokens = sum(count_tokens(t) for t in texts(body, provider="gemini"))
    return openai_list(
        vectors, model=model, prompt_tokens=tokens, encoding_format=body.get("encoding_format")
    )


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
    url = bedrock.model_url(deployment, "invoke")
    content = orjson.dumps(payload)
    headers = {"content-type": "application/json", "accept": "application/json"}
    return url, auth_headers(deployment.provider, url=url, body=content, headers=headers), content


def titan_vector(content: bytes) -> tuple[list[float], int]:
    parsed = json_object(content)
    vector, tokens = parsed.get("embedding"), parsed.get("inputTextTokenCount")
    if not isinstance(vector, list):
        raise UpstreamProtocolError("The upstream provider sent an embeddings answer without 'embedding'.")
    return vector, tokens if isinstance(tokens, int) else 0


def mock_vector(text: str, size: int) -> list[float]:
    """Deterministic, unit-free values in [-1, 1) derived from the text, exact in float32: the
    text's SHA-256 digest, repeated (built by list repetition, so a large ``dimensions`` costs
    the copy, not a Python step per value)."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    cycle = [(byte - 128) / 128 for byte in digest]
    return (cycle * (size // len(cycle) + 1))[:size]


def mock_result(body: JsonObject, *, model: str) -> EmbeddingResult:
    inputs = texts(body, provider="mock")
    size = dimensions(body) or MOCK_DIMENSIONS
    vectors = [mock_vector(text, size) for text in inputs]
    tokens = sum(count_tokens(t) for t in inputs)
    return openai_list(
        vectors, model=model, prompt_tokens=tokens, encoding_format=body.get("encoding_format")
    )


def _openai_request(body: JsonObject, deployment: DeploymentConfig) -> tuple[str, dict[str, str], bytes]:
    payload = {**body, "model": deployment.upstream_model}
    url = f"{deployment.provider.base_url}/embeddings"
    return url, openai.headers_for(deployment), orjson.dumps(payload)


def _azure_request(body: JsonObject, deployment: DeploymentConfig) -> tuple[str, dict[str, str], bytes]:
    payload = {**body, "model": deployment.upstream_model}
    return (
        azure.deployment_url(deployment, "embeddings"),
        azure.headers_for(deployment),
        orjson.dumps(payload),
    )


async def _post(call: UpstreamCall, request: tuple[str, dict[str, str], bytes], map_error: ErrorMap) -> bytes:
    return (await post(call, request, map_error=map_error, stream=False)).content


async def _openai(call: UpstreamCall) -> EmbeddingResult:
    return passthrough_result(
        await _post(call, _openai_request(call.body, call.deployment), openai.map_error)
    )


async def _azure(call: UpstreamCall) -> EmbeddingResult:
    return passthrough_result(await _post(call, _azure_request(call.body, call.deployment), azure.map_error))


async def _gemini(call: UpstreamCall) -> EmbeddingResult:
    content = await _post(call, gemini_request(call.body, call.deployment), gemini.map_error)
    return gemini_result(content, call.body, model=call.deployment.upstream_model)


async def _bedrock(call: UpstreamCall) -> EmbeddingResult:
    """Titan embeds one text per call: the inputs are sent concurrently, in order."""
    body, deployment = call.body, call.deployment
    requests = [titan_request(text, body, deployment) for text in texts(body, provider="bedrock")]
    answers = await asyncio.gather(*(_post(call, r, bedrock.map_error) for r in requests))
    vectors = [titan_vector(answer) for answer in answers]
    return openai_list(
        [vector for vector, _ in vectors],
        model=deployment.upstream_model,
        prompt_tokens=sum(tokens for _, tokens in vectors),
        encoding_format=body.get("encoding_format"),
    )


async def _mock(call: UpstreamCall) -> EmbeddingResult:
    return mock_result(call.body, model=call.deployment.upstream_model)


_EMBEDDERS: dict[str, Callable[[UpstreamCall], Awaitable[EmbeddingResult]]] = {
    "openai": _openai,
    "azure": _azure,
    "gemini": _gemini,
    "bedrock": _bedrock,
    "mock": _mock,
}


async def embed(call: UpstreamCall) -> EmbeddingResult:
    """One embeddings call against the deployment's provider kind."""
    kind = call.deployment.provider.kind
    embedder = _EMBEDDERS.get(kind)
    if embedder is None:
        raise UnsupportedRequest(f"The {kind} provider has no embeddings API.", param="model")
    return await embedder(call)
