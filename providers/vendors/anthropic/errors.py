"""Anthropic's error status and body as the error the client sees."""

from __future__ import annotations

from collections.abc import Mapping

from providers.errors import UpstreamError
from providers.translation.error_policy import retry_headers, vendor_error
from providers.translation.vendor_json import parse_or_none
from providers.types import DeploymentConfig


def map_error(
    status: int, content: bytes, headers: Mapping[str, str], deployment: DeploymentConfig
) -> UpstreamError:
    """``{"type":"error","error":{"type","message"}}``: 429 keeps ``retry-after``, 529
    ``overloaded_error`` becomes 503, 401/403 an upstream configuration error."""
    parsed = parse_or_none(content)
    error = parsed.get("error") if isinstance(parsed, dict) else None
    message = str(error.get("message", "")) if isinstance(error, dict) else ""
    return vendor_error(status, message, provider=deployment.provider, headers=retry_headers(headers))
