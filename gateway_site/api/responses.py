"""Rendering: JSON bodies with orjson, and any error of ours as OpenAI's error object
``{"error": {"message", "type", "param", "code"}}`` with its status and headers."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol

import orjson
from django.http import HttpResponse

logger = logging.getLogger("gateway.api")


class RenderableError(Protocol):
    status: int
    error_type: str
    code: str | None
    param: str | None
    message: str
    headers: dict[str, str]


def json_response(body: bytes | Mapping[str, object], *, status: int = 200) -> HttpResponse:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return HttpResponse(content, status=status, content_type="application/json")


def error_object(error: RenderableError) -> dict[str, object]:
    return {
        "error": {
            "message": error.message,
            "type": error.error_type,
            "param": error.param,
            "code": error.code,
        }
    }


def error_response(error: RenderableError) -> HttpResponse:
    response = json_response(error_object(error), status=error.status)
    for name, value in error.headers.items():
        response[name] = value
    return response


def internal_error_object(request_id: str) -> dict[str, object]:
    return {
        "error": {
            "message": f"The gateway failed to handle the request (request id {request_id}).",
            "type": "server_error",
            "param": None,
            "code": "internal_error",
        }
    }


def internal_error_response(request_id: str) -> HttpResponse:
    return json_response(internal_error_object(request_id), status=500)
