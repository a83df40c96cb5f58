"""``/v1/embeddings`` on an OpenAI-compatible upstream: the request and the answer pass through
(model swapped)."""

from __future__ import annotations

import orjson

from providers.translation.embeddings import EmbeddingResult, passthrough_result, post_content
from providers.translation.upstream import JsonObject, UpstreamCall
from providers.types import DeploymentConfig
from providers.vendors.openai.errors import map_error
from providers.vendors.openai.request import headers_for


def _openai_request(body: JsonObject, deployment: DeploymentConfig) -> tuple[str, dict[str, str], bytes]:
    payload = {**body, "model": deployment.upstream_model}
    url = f"{deployment.provider.base_url}/embeddings"
    return url, headers_for(deployment), orjson.dumps(payload)


async def embed(call: UpstreamCall) -> EmbeddingResult:
    return passthrough_result(
        await post_content(call, _openai_request(call.body, call.deployment), map_error)
    )
