"""Azure's error status and body as the error the client sees: OpenAI's mapping, with 429 and 503
normalised."""

from __future__ import annotations

from collections.abc import Mapping

from providers.errors import UpstreamError
from providers.translation.error_policy import retry_headers, vendor_error
from providers.types import DeploymentConfig
from providers.vendors.openai import errors as openai


def map_error(
    status: int, content: bytes, headers: Mapping[str, str], deployment: DeploymentConfig
) -> UpstreamError:
    """OpenAI's mapping; a 429 (whose ``code`` Azure often sends as "429") is normalised to
    ``rate_limit_exceeded`` and a 503 is ``upstream_overloaded``, as for every kind."""
    if status in (429, 503):
        message, _, _, _ = openai.error_fields(content)
        return vendor_error(status, message, provider=deployment.provider, headers=retry_headers(headers))
    return openai.map_error(status, content, headers, deployment)
