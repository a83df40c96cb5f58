"""An OpenAI chat request as it goes to an OpenAI-compatible upstream: the client's body with the
model name swapped, and usage always requested when streaming."""

from __future__ import annotations

import orjson

from providers.translation.upstream import JsonObject
from providers.types import DeploymentConfig


def to_upstream(
    body: JsonObject, deployment: DeploymentConfig, *, stream: bool
) -> tuple[str, dict[str, str], bytes]:
    payload = dict(body)
    payload["model"] = deployment.upstream_model
    if stream:
        options = payload.get("stream_options")
        merged = dict(options) if isinstance(options, dict) else {}
        merged["include_usage"] = True  # usage is always needed for accounting
        payload["stream_options"] = merged
    url = f"{deployment.provider.base_url}/chat/completions"
    return url, headers_for(deployment, stream=stream), orjson.dumps(payload)


def headers_for(deployment: DeploymentConfig, *, stream: bool = False) -> dict[str, str]:
    accept = "text/event-stream" if stream else "application/json"
    headers = {"content-type": "application/json", "accept": accept}
    if deployment.provider.api_key:
        headers["authorization"] = f"Bearer {deployment.provider.api_key}"
    return headers
