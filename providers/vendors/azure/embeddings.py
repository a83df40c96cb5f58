"""``/v1/embeddings`` on Azure: OpenAI's request and answer on the deployment's ``embeddings`` URL."""

from __future__ import annotations

import orjson

from providers.translation.embeddings import EmbeddingResult, passthrough_result, post_content
from providers.translation.upstream import JsonObject, UpstreamCall
from providers.types import DeploymentConfig
from providers.vendors.azure.errors import map_error
from providers.vendors.azure.request import deployment_url, headers_for


def _azure_request(body: JsonObject, deployment: DeploymentConfig) -> tuple[str, dict[str, str], bytes]:
    payload = {**body, "model": deployment.upstream_model}
    return (
        deployment_url(deployment, "embeddings"),
        headers_for(deployment),
        orjson.dumps(payload),
    )


async def embed(call: UpstreamCall) -> EmbeddingResult:
    return passthrough_result(await post_content(call, _azure_request(call.body, call.deployment), map_error))
