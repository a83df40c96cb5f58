"""Gemini's error status and Google RPC error body as the error the client sees."""

from __future__ import annotations

import math
from collections.abc import Mapping

from providers.errors import UpstreamError
from providers.translation.error_policy import retry_headers, vendor_error
from providers.translation.vendor_json import parse_or_none
from providers.types import DeploymentConfig
from providers.vendors.gemini.response import field


def map_error(
    status: int, content: bytes, headers: Mapping[str, str], deployment: DeploymentConfig
) -> UpstreamError:
    """Google RPC errors: the message and RPC status (as ``code``) are kept; a ``RetryInfo``
    delay becomes ``retry-after``; an invalid API key (a 400 with reason API_KEY_INVALID) is
    an upstream configuration error like a 401."""
    error = field(parse_or_none(content), "error")
    message = str(field(error, "message") or "")
    details = field(error, "details")
    details = details if isinstance(details, list) else []
    retry = retry_headers(headers)
    for detail in details:
        seconds = _retry_seconds(field(detail, "retryDelay"))
        if seconds is not None and "retry-after" not in retry:
            retry["retry-after"] = seconds
    if status == 400 and any(field(d, "reason") == "API_KEY_INVALID" for d in details):
        status = 401
    rpc_status = field(error, "status")
    code = str(rpc_status) if isinstance(rpc_status, str) else None
    return vendor_error(status, message, provider=deployment.provider, headers=retry, code=code)


def _retry_seconds(delay: object) -> str | None:
    """``RetryInfo.retryDelay`` ("47s", "0.5s") as whole seconds, rounded up."""
    if not isinstance(delay, str) or not delay.endswith("s"):
        return None
    try:
        return str(max(1, math.ceil(float(delay[:-1]))))
    except ValueError:
        return None
