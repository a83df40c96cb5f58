"""Errors of the API edge itself (the request as sent cannot be served)."""

from __future__ import annotations


class RequestError(Exception):
    status = 400
    error_type = "invalid_request_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers: dict[str, str] = {}


class PayloadTooLarge(RequestError):
    status = 413
    code = "request_too_large"


class ModelNotFound(RequestError):
    status = 404
    code = "model_not_found"


class NotFound(RequestError):
    status = 404
    code = "not_found"


class MethodNotAllowed(RequestError):
    status = 405
    code = "method_not_allowed"


class InternalError(RequestError):
    """A bug of the gateway's (logged once with its stack trace): the message names the request
    id so an operator can find it."""

    status = 500
    error_type = "server_error"

    def __init__(self, request_id: str) -> None:
        super().__init__(
            f"The gateway failed to handle the request (request id {request_id}).", code="internal_error"
        )
