"""Errors raised while admitting a request. Each carries the HTTP status, the OpenAI error
fields and the headers the edge renders (``gateway_site.api.responses``)."""

from __future__ import annotations


class AdmissionError(Exception):
    status = 400
    error_type = "invalid_request_error"
    code: str | None = None
    param: str | None = None

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers: dict[str, str] = dict(headers or {})


class AuthenticationError(AdmissionError):
    status = 401
    error_type = "invalid_request_error"
    code = "invalid_api_key"


class UnknownKey(AuthenticationError):
    """The presented key is not in the registry (maybe issued after the snapshot was taken)."""


class RateLimited(AdmissionError):
    """A rate or parallel limit refused the request (OpenAI's ``rate_limit_exceeded``; the
    type says which dimension: ``requests`` or ``tokens``)."""

    status = 429
    error_type = "requests"
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, error_type: str, headers: dict[str, str]) -> None:
        super().__init__(message, headers=headers)
        self.error_type = error_type


class QuotaExceeded(AdmissionError):
    """A hard cost quota refused the request (OpenAI's ``insufficient_quota``)."""

    status = 429
    error_type = "insufficient_quota"
    code = "insufficient_quota"


class LimiterUnavailable(AdmissionError):
    """Redis is unreachable and the installation fails closed (``GATEWAY_ON_REDIS_ERROR=closed``)."""

    status = 503
    error_type = "server_error"
    code = "rate_limiter_unavailable"


class Overloaded(AdmissionError):
    """The gateway process is too busy to take the request now (shed before any work, or its
    limiter could not be heard in time because of its own lag); retry shortly."""

    status = 503
    error_type = "server_error"
    code = "overloaded"
