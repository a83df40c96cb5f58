"""Rendering: JSON bodies with orjson, and any error of ours as OpenAI's error object
``{"error": {"message", "type", "param", "code"}}`` with its status and headers.

An upstream failure (``UpstreamError``) may carry what a vendor sent, and a vendor may echo the
request's headers, the operator's provider key among them: every field of such an error, and
of a mid-stream error event, passes through the PII redactor extended with every credential of
the configured providers (``relay_redactor``) before it reaches the client. The adapters have
already removed the serving provider's own credentials; this catches the rest (any provider's
key, personal data, keys of known formats)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import Protocol

import orjson
from django.http import HttpResponse

from gateway_site.observability.access_log import site_redactor
from gateway_site.observability.redaction import Redactor
from gateway_site.runtime.process import get_runtime
from providers.errors import UpstreamError
from providers.types import Catalog

logger = logging.getLogger("gateway.api")
ERROR_FIELDS = ("message", "type", "param", "code")


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
    body = relayed_error_object(error) if isinstance(error, UpstreamError) else error_object(error)
    response = json_response(body, status=error.status)
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


def provider_secrets(catalog: Catalog) -> frozenset[str]:
    """Every credential of the providers serving ``catalog``'s models: API keys, AWS secret
    access keys, session tokens and access key ids."""
    values: set[str | None] = set()
    for route in catalog.models.values():
        for deployment in route.deployments:
            provider = deployment.provider
            values.add(provider.api_key)
            if provider.aws is not None:
                aws = provider.aws
                values.update((aws.access_key_id, aws.secret_access_key, aws.session_token))
    return frozenset(value for value in values if value)


@functools.lru_cache(maxsize=4)
def _redactor_with(secrets: frozenset[str]) -> Redactor:
    return site_redactor().with_secrets(secrets)


def relay_redactor() -> Redactor:
    """The PII redactor plus the credentials of the configuration the process serves."""
    return _redactor_with(provider_secrets(get_runtime().watcher.current().catalog))


def relayed_error_object(error: RenderableError, *, redactor: Redactor | None = None) -> dict[str, object]:
    """``error_object`` with each field redacted (``redactor`` defaults to ``relay_redactor``)."""
    fields = {"message": error.message, "type": error.error_type, "param": error.param, "code": error.code}
    return {"error": _redacted(fields, redactor or relay_redactor())}


def relayed_error_payload(payload: bytes, *, redactor: Redactor | None = None) -> bytes:
    """A mid-stream error event's JSON (``{"error": {...}}``) as OpenAI's error object with each
    field redacted; anything else in it is dropped."""
    try:
        parsed = orjson.loads(payload)
    except orjson.JSONDecodeError:
        parsed = None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    relayed = _redacted(error if isinstance(error, dict) else {}, redactor or relay_redactor())
    relayed["message"] = relayed["message"] or "The upstream provider failed mid-stream."
    relayed["type"] = relayed["type"] or "upstream_error"
    return orjson.dumps({"error": relayed})


def _redacted(fields: Mapping[str, object], redactor: Redactor) -> dict[str, object]:
    """The four fields of an error object, each redacted; a number becomes its text, any other
    value that is not text is dropped (None)."""
    out: dict[str, object] = {}
    for name in ERROR_FIELDS:
        value = fields.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        out[name] = redactor.redact(value) if isinstance(value, str) else None
    return out
