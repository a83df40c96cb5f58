"""Bedrock's error status and body as the error the client sees: the error name (from
``x-amzn-ErrorType``) decides."""

from __future__ import annotations

from collections.abc import Mapping

from providers.errors import UpstreamError, UpstreamTimeout
from providers.translation.error_policy import scrub, vendor_error
from providers.translation.vendor_json import parse_or_none
from providers.types import DeploymentConfig

# Bedrock's error names whose status does not say what the client should see.
_STATUS_BY_NAME = {"ModelNotReadyException": 503, "ModelErrorException": 502}


def error_name(headers: Mapping[str, str], body: object) -> str:
    """As botocore reads it: the ``x-amzn-ErrorType`` header up to ``:``, else the body's
    ``__type`` / ``code`` (after any ``#``)."""
    name = headers.get("x-amzn-errortype", "")
    if not name and isinstance(body, dict):
        name = str(body.get("__type") or body.get("code") or "")
    return name.split(":", 1)[0].rsplit("#", 1)[-1]


def map_error(
    status: int, content: bytes, headers: Mapping[str, str], deployment: DeploymentConfig
) -> UpstreamError:
    """``x-amzn-ErrorType`` names the error: ThrottlingException 429, ModelNotReadyException
    and ServiceUnavailableException 503, ModelTimeoutException 504, ResourceNotFoundException
    404 ``model_not_found``, access and signature failures an upstream configuration error."""
    parsed = parse_or_none(content)
    message = str(parsed.get("message") or parsed.get("Message") or "") if isinstance(parsed, dict) else ""
    name = error_name(headers, parsed)
    if name == "ModelTimeoutException" or status == 408:
        detail = scrub(message, deployment.provider)
        return UpstreamTimeout(f"The upstream provider '{deployment.provider.name}' timed out: {detail}")
    status = _STATUS_BY_NAME.get(name, status)
    code = "model_not_found" if name == "ResourceNotFoundException" else (name or None)
    return vendor_error(status, message, provider=deployment.provider, headers={}, code=code)
