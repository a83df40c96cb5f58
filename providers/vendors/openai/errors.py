"""An OpenAI-compatible upstream's error status and body as the error the client sees."""

from __future__ import annotations

from collections.abc import Mapping

from providers.errors import UpstreamError
from providers.translation.error_policy import (
    client_error,
    credentials_rejected,
    retry_headers,
    scrub,
    server_error,
)
from providers.translation.vendor_json import parse_or_none
from providers.types import DeploymentConfig


def map_error(
    status: int, content: bytes, headers: Mapping[str, str], deployment: DeploymentConfig
) -> UpstreamError:
    """The client sees the upstream's 4xx with its message, type, code and param; 401/403 (our
    credentials) and 5xx become a 502 that names the provider. Credentials and the base URL
    are redacted from every field."""
    provider = deployment.provider
    message, error_type, code, param = error_fields(content)
    text = scrub(message, provider) or ""
    retry = retry_headers(headers)
    if status in (401, 403):
        return credentials_rejected(provider.name, status)
    if 400 <= status < 500:
        return client_error(
            status,
            text,
            error_type=scrub(error_type, provider) or "invalid_request_error",
            code=scrub(code, provider),
            param=scrub(param, provider),
            headers=retry,
        )
    return server_error(provider.name, status, text, headers=retry)


def error_fields(content: bytes) -> tuple[str, str | None, str | None, str | None]:
    parsed = parse_or_none(content)
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(error, dict):
        return "", None, None, None

    def text(name: str) -> str | None:
        value = error.get(name)
        return str(value) if isinstance(value, (str, int)) else None

    return text("message") or "", text("type"), text("code"), text("param")
