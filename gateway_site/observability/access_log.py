"""The access log: one line per ``/v1/*`` request on the ``gateway.access`` logger, written when
the request ends (docs/operations.md, "Logs"). Admitted requests are logged from the usage event
(``log_admitted``), requests refused before admission from the endpoint (``log_refused``).

No prompt or completion text is logged unless the tenant turned content logging on
(``Tenant.log_content``); then both go through the PII redactor first. Nothing is built when
the logger is off (``GATEWAY_ACCESS_LOG=off``)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

import orjson
from django.conf import settings

from accounting.recorder import UsageEvent
from gateway_site.observability.logconfig import ACCESS_LOGGER
from gateway_site.observability.redaction import Redactor, redaction_key
from quotas.authentication.registry import KeyContext
from routing.router import RoutePlan

logger = logging.getLogger(ACCESS_LOGGER)

# The prompt messages' texts and the completion text, read only when content is logged.
ContentSource = Callable[[], tuple[list[str], str]]


@functools.cache
def site_redactor() -> Redactor:
    """The process's redactor, keyed by ``GATEWAY_REDACTION_KEY`` (else derived from SECRET_KEY)."""
    return Redactor(redaction_key(configured=settings.GATEWAY_REDACTION_KEY, secret_key=settings.SECRET_KEY))


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def log_admitted(
    event: UsageEvent, *, route_plan: RoutePlan, overhead_ms: float, content: ContentSource | None
) -> None:
    """The line of a request that was admitted (its usage event was emitted)."""
    if not logger.isEnabledFor(logging.INFO):
        return
    fields: dict[str, object] = {
        "request_id": event.request_id,
        "client_request_id": event.client_request_id,
        "endpoint": event.endpoint,
        "tenant": event.tenant_name,
        "key_prefix": event.key_prefix,
        "model": event.model,
        "provider": event.provider,
        "deployment": event.upstream_model,
        "status": event.status,
        "error_type": event.error_type,
        "prompt_tokens": event.prompt_tokens,
        "completion_tokens": event.completion_tokens,
        "cost_usd": str(event.cost_usd),
        "latency_ms": _ms(event.latency_ms),
        "overhead_ms": _ms(overhead_ms),
        "upstream_ms": _ms(event.upstream_latency_ms),
        "ttft_ms": _ms(event.ttft_ms),
        "attempts": route_plan.call_count,
        "retries": route_plan.retries,
        "fallback": route_plan.fell_back,
        "stream": event.streamed,
        "cache_hit": event.cache_hit,
    }
    if content is not None:
        fields.update(redacted_content(content))
    logger.info(
        "%s %s %s %s %.1fms",
        event.endpoint,
        event.tenant_name,
        event.model,
        event.status,
        event.latency_ms,
        extra=fields,
    )


def response_text(body: bytes) -> str:
    """The text of an OpenAI chat completion body's choices (empty when there is none)."""
    try:
        parsed = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return ""
    choices = parsed.get("choices") if isinstance(parsed, dict) else None
    texts = [
        choice["message"].get("content") or ""
        for choice in choices or ()
        if isinstance(choice, dict) and isinstance(choice.get("message"), dict)
    ]
    return "\n".join(t for t in texts if isinstance(t, str))


def redacted_content(content: ContentSource) -> dict[str, object]:
    prompt, completion = content()
    redactor = site_redactor()
    return {"prompt": [redactor.redact(text) for text in prompt], "completion": redactor.redact(completion)}


def log_refused(
    *,
    request_id: str,
    client_request_id: str,
    path: str,
    key: KeyContext | None,
    status: int,
    error_type: str,
    latency_ms: float,
) -> None:
    """The line of a request answered before admission: refused (bad key, bad body, limits) or
    served without an upstream call (``/v1/models``)."""
    if not logger.isEnabledFor(logging.INFO):
        return
    fields: dict[str, object] = {
        "request_id": request_id,
        "client_request_id": client_request_id,
        "path": path,
        "tenant": key.tenant_name if key else "",
        "key_prefix": key.key_prefix if key else "",
        "status": status,
        "error_type": error_type,
        "latency_ms": _ms(latency_ms),
        "overhead_ms": _ms(latency_ms),
        "attempts": 0,
    }
    logger.info("%s %s %s %.1fms", path, fields["tenant"], status, latency_ms, extra=fields)
