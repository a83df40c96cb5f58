"""Azure OpenAI (PROVIDERS.md §2): OpenAI's wire format behind deployment URLs.

The request goes to ``{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=``
with the key in ``api-key``; the deployment's upstream model name is the Azure deployment name.
Answers come back as OpenAI's, without Azure's content-filter annotations
(``prompt_filter_results``, ``content_filter_results``) so clients cannot tell the difference;
a filtered answer keeps ``finish_reason: "content_filter"``, a filtered prompt is a 400 with
``code: "content_filter"``. Filter-only stream chunks are dropped."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

import orjson

from providers.adapters import openai
from providers.adapters.base import JsonObject, UpstreamCall, post
from providers.adapters.error_policy import retry_headers, vendor_error
from providers.adapters.vendor_json import json_headers, json_object
from providers.errors import UpstreamError, UpstreamProtocolError
from providers.types import Completion, DeploymentConfig, StreamEvent

_FILTER_KEYS = ("prompt_filter_results", "prompt_annotations")


def deployment_url(deployment: DeploymentConfig, operation: str) -> str:
    provider = deployment.provider
    name = quote(deployment.upstream_model, safe="")
    version = quote(provider.api_version, safe="")
    return f"{provider.base_url}/openai/deployments/{name}/{operation}?api-version={version}"


def headers_for(deployment: DeploymentConfig, *, stream: bool = False) -> dict[str, str]:
    return json_headers(stream=stream, key_header="api-key", api_key=deployment.provider.api_key)


def to_upstream(
    body: JsonObject, deployment: DeploymentConfig, *, stream: bool
) -> tuple[str, dict[str, str], bytes]:
    _, _, content = openai.to_upstream(body, deployment, stream=stream)
    return deployment_url(deployment, "chat/completions"), headers_for(deployment, stream=stream), content


def _strip_filters(parsed: dict[str, object]) -> dict[str, object]:
    cleaned = {k: v for k, v in parsed.items() if k not in _FILTER_KEYS}
    choices = parsed.get("choices")
    if isinstance(choices, list):
        cleaned["choices"] = [
            {k: v for k, v in c.items() if k != "content_filter_results"} if isinstance(c, dict) else c
            for c in choices
        ]
    return cleaned


def from_upstream(content: bytes) -> Completion:
    parsed = json_object(content)
    if not isinstance(parsed.get("choices"), list):
        raise UpstreamProtocolError("The upstream provider sent a completion without choices.")
    return Completion(
        body=orjson.dumps(_strip_filters(parsed)), usage=openai.parse_usage(parsed.get("usage"))
    )


def from_chunk(data: bytes) -> StreamEvent:
    parsed = json_object(data)
    if "error" in parsed and not parsed.get("choices"):
        return StreamEvent(payload=data, error=True)
    if not parsed.get("choices") and parsed.get("usage") is None:
        return StreamEvent(payload=None)  # a content-filter-only chunk: nothing for the client
    return openai.from_chunk(orjson.dumps(_strip_filters(parsed)))


def map_error(
    status: int, content: bytes, headers: Mapping[str, str], deployment: DeploymentConfig
) -> UpstreamError:
    """OpenAI's mapping; a 429 (whose ``code`` Azure often sends as "429") is normalised to
    ``rate_limit_exceeded`` and a 503 is ``upstream_overloaded``, as for every kind."""
    if status in (429, 503):
        message, _, _, _ = openai.error_fields(content)
        return vendor_error(status, message, provider=deployment.provider, headers=retry_headers(headers))
    return openai.map_error(status, content, headers, deployment)


class AzureAdapter:
    async def complete(self, call: UpstreamCall) -> Completion:
        request = to_upstream(call.body, call.deployment, stream=False)
        response = await post(call, request, map_error=map_error, stream=False)
        return from_upstream(response.content)

    async def open_stream(self, call: UpstreamCall) -> openai.OpenAIStream:
        request = to_upstream(call.body, call.deployment, stream=True)
        response = await post(call, request, map_error=map_error, stream=True)
        return openai.OpenAIStream(response, call, parse=from_chunk)
