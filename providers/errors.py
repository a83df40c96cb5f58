"""Upstream failures, each carrying the status and OpenAI error fields the client sees.

UpstreamError                 any failure talking to a provider
├── UpstreamHTTPError         the provider answered with an error status
├── UpstreamTimeout           no (complete) answer within the deadline -> 504
├── UpstreamUnreachable       connection refused, reset, DNS failure -> 502
├── UpstreamProtocolError     the provider's answer could not be understood -> 502
└── UnsupportedRequest        the request uses a feature this provider kind cannot honour -> 400
"""

from __future__ import annotations


class UpstreamError(Exception):
    status = 502
    error_type = "upstream_error"
    code: str | None = "upstream_error"
    param: str | None = None

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if error_type is not None:
            self.error_type = error_type
        if code is not None:
            self.code = code
        self.param = param
        self.headers: dict[str, str] = dict(headers or {})


class UpstreamHTTPError(UpstreamError):
    pass


class UpstreamTimeout(UpstreamError):
    status = 504
    error_type = "timeout_error"
    code = "upstream_timeout"


class UpstreamUnreachable(UpstreamError):
    code = "upstream_unreachable"


class UpstreamProtocolError(UpstreamError):
    code = "upstream_bad_response"


class UnsupportedRequest(UpstreamError):
    """Raised while translating, before anything is sent upstream."""

    status = 400
    error_type = "invalid_request_error"
    code = "unsupported_parameter"


def redact(text: str, secrets: tuple[str | None, ...]) -> str:
    """Remove credentials and internal URLs from text that may reach a client or a log."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text
