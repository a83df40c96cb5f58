"""Errors raised while admitting a request. Each carries the HTTP status and OpenAI error
fields the edge renders (``gateway_site.api.responses``)."""

from __future__ import annotations


class AdmissionError(Exception):
    status = 400
    error_type = "invalid_request_error"
    code: str | None = None
    param: str | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.headers: dict[str, str] = {}


class AuthenticationError(AdmissionError):
    status = 401
    error_type = "invalid_request_error"
    code = "invalid_api_key"


class ModelAccessDenied(AdmissionError):
    status = 403
    error_type = "permission_error"
    code = "model_not_allowed"
    param = "model"
