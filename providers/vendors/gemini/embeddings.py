"""``/v1/embeddings`` on Gemini: ``batchEmbedContents``, one request per input; Gemini reports no
usage, so the prompt tokens are the gateway's count."""

from __future__ import annotations

import orjson

from providers.errors import UpstreamProtocolError
from providers.tokens import count_tokens
from providers.translation.embeddings import EmbeddingResult, dimensions, openai_list, post_content, texts
from providers.translation.upstream import JsonObject, UpstreamCall
from providers.translation.vendor_json import json_object
from providers.types import DeploymentConfig
from providers.vendors.gemini.errors import map_error
from providers.vendors.gemini.request import headers_for, model_url


def gemini_request(body: JsonObject, deployment: DeploymentConfig) -> tuple[str, dict[str, str], bytes]:
    model = f"models/{deployment.upstream_model.removeprefix('models/')}"
    size = dimensions(body)
    requests = []
    for text in texts(body, provider="gemini"):
        item: JsonObject = {"model": model, "content": {"parts": [{"text": text}]}}
        if size is not None:
            item["outputDimensionality"] = size
        requests.append(item)
    url = model_url(deployment, "batchEmbedContents")
    return url, headers_for(deployment), orjson.dumps({"requests": requests})


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


async def embed(call: UpstreamCall) -> EmbeddingResult:
    content = await post_content(call, gemini_request(call.body, call.deployment), map_error)
    return gemini_result(content, call.body, model=call.deployment.upstream_model)
