"""OpenAI's request body on Azure's deployment URL, with the key in ``api-key``."""

from __future__ import annotations

from urllib.parse import quote

from providers.translation.upstream import JsonObject
from providers.translation.vendor_json import json_headers
from providers.types import DeploymentConfig
from providers.vendors.openai import request as openai


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
