"""Anthropic's error envelope, ``{"type": "error", "error": {"type", "message"}}``, with the
statuses the Anthropic SDKs raise their own exception classes for. The gateway's statuses map
onto them: 4xx keep theirs (each with Anthropic's type), an overloaded gateway or upstream
(503) is 529 ``overloaded_error``, an upstream timeout 504 ``timeout_error``, any other failure
500 ``api_error``. No Django here."""

from __future__ import annotations

from collections.abc import Mapping

# Anthropic's error type for each status it uses.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
OVERLOADED = 529


def anthropic_status(status: int) -> int:
    """The status a Messages client sees for the gateway's ``status``."""
    if status < 500 or status == 504:
        return status
    return OVERLOADED if status == 503 else 500


def error_type(status: int) -> str:
    """Anthropic's error type for an (already mapped) status."""
    return ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")


def error_body(status: int, message: str) -> dict[str, object]:
    return {"type": "error", "error": {"type": error_type(status), "message": message}}


# An OpenAI error object's ``type`` / ``code`` as Anthropic's type, for a mid-stream failure.
_STREAM_TYPES = {
    "upstream_overloaded": "overloaded_error",
    "rate_limit_error": "rate_limit_error",
    "timeout_error": "timeout_error",
    "invalid_request_error": "invalid_request_error",
}


def stream_error_type(error: Mapping[str, object]) -> str:
    """The type of a mid-stream ``error`` event from the OpenAI error object it reports."""
    for name in ("code", "type"):
        value = error.get(name)
        if isinstance(value, str) and value in _STREAM_TYPES:
            return _STREAM_TYPES[value]
    return "api_error"
