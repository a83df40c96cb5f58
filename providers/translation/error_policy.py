"""How a translating adapter turns a vendor's error status into what the OpenAI client sees.
One policy for every vendor, so clients see the same classes whoever served them:

* 401 / 403 (the gateway's own credentials): 502 ``upstream_auth_failed``, naming the provider,
  never the credential;
* 429: 429 ``rate_limit_exceeded`` with ``retry-after`` / ``retry-after-ms`` carried over;
* overloaded (Anthropic 529, 503): 503 ``upstream_overloaded``, retry hints carried over;
* other 4xx: the same status, the vendor's message (redacted), ``invalid_request_error``;
* other 5xx: 502 ``upstream_error``.

OpenAI-compatible upstreams (``vendors.openai.errors.map_error``) keep their own error types and codes and
are built from the same pieces: ``credentials_rejected``, ``client_error``, ``server_error``.

Every field the client gets from the vendor (message, type, param, code, a mid-stream error
event's fields) has the serving provider's credentials and base URL removed here (``scrub``),
since a vendor may echo the request's headers; retry hints are passed on only when they are a
number or an HTTP date. The edge redacts the same fields once more with the PII redactor and
every configured credential (``gateway_site.api.responses``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import orjson

from providers.errors import UpstreamHTTPError, redact
from providers.translation.vendor_json import parse_or_none
from providers.types import ProviderConfig, StreamEvent

RETRY_HEADERS = ("retry-after", "retry-after-ms")
OVERLOADED = (503, 529)
_NUMBER = re.compile(r"\d{1,12}(?:\.\d{1,6})?")
# HTTP's IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT": the form servers send.
_HTTP_DATE = re.compile(r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT")


def retry_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The vendor's retry hints that are well-formed: a number of seconds (``retry-after``) or
    milliseconds (``retry-after-ms``), or an HTTP date (``retry-after``)."""
    hints: dict[str, str] = {}
    for name in RETRY_HEADERS:
        value = headers.get(name, "").strip()
        if _NUMBER.fullmatch(value) or (name == "retry-after" and _HTTP_DATE.fullmatch(value)):
            hints[name] = value
    return hints


def scrub(value: str | None, provider: ProviderConfig) -> str | None:
    """A vendor's field without the provider's credentials and base URL (None stays None)."""
    return None if value is None else redact(value, provider.secrets())


def vendor_error(
    status: int,
    message: str,
    *,
    provider: ProviderConfig,
    headers: Mapping[str, str],
    code: str | None = None,
    param: str | None = None,
) -> UpstreamHTTPError:
    """``message``, ``code`` and ``param`` are the vendor's (scrubbed here); ``headers`` are the
    retry hints to pass on."""
    text = redact(message, provider.secrets())
    retry = dict(headers)
    if status in (401, 403):
        return credentials_rejected(provider.name, status)
    if status == 429:
        limited = text or "The upstream provider's rate limit was reached."
        return UpstreamHTTPError(
            limited, status=429, error_type="rate_limit_error", code="rate_limit_exceeded", headers=retry
        )
    if 400 <= status < 500:
        return client_error(
            status, text, code=scrub(code, provider), param=scrub(param, provider), headers=retry
        )
    return server_error(provider.name, status, text, headers=retry, overloaded=status in OVERLOADED)


def credentials_rejected(provider: str, status: int) -> UpstreamHTTPError:
    """A 502 naming the provider, never the credential: the client cannot fix this."""
    return UpstreamHTTPError(
        f"The upstream provider '{provider}' rejected the gateway's credentials "
        f"(HTTP {status}); the gateway administrator must fix the provider configuration.",
        status=502,
        error_type="upstream_error",
        code="upstream_auth_failed",
    )


def client_error(
    status: int,
    text: str,
    *,
    code: str | None,
    param: str | None,
    headers: dict[str, str],
    error_type: str = "invalid_request_error",
) -> UpstreamHTTPError:
    """The vendor's 4xx as it is: its status, (redacted) message, code and param."""
    error = UpstreamHTTPError(
        text or f"The upstream provider returned HTTP {status}.",
        status=status,
        error_type=error_type,
        param=param,
        headers=headers,
    )
    error.code = code  # the vendor's own code, null included (not our default)
    return error


def server_error(
    provider: str, status: int, text: str, *, headers: dict[str, str], overloaded: bool = False
) -> UpstreamHTTPError:
    """The vendor failed: 503 ``upstream_overloaded`` when it said it is overloaded, else 502."""
    detail = f": {text}" if text else ""
    return UpstreamHTTPError(
        f"The upstream provider '{provider}' "
        + (f"is overloaded{detail}" if overloaded else f"failed with HTTP {status}{detail}"),
        status=503 if overloaded else 502,
        error_type="upstream_error",
        code="upstream_overloaded" if overloaded else "upstream_error",
        headers=headers,
    )


def stream_error(payload: bytes, provider: ProviderConfig) -> StreamEvent:
    """A mid-stream error event as OpenAI's error object, whatever the vendor (or a translator)
    put in it: its ``message``, ``type``, ``param`` and ``code`` when they are text or numbers,
    each scrubbed; any other member is dropped."""
    parsed = parse_or_none(payload)
    error = parsed.get("error") if isinstance(parsed, dict) else None
    fields = error if isinstance(error, dict) else {"message": error}

    def text(name: str) -> str | None:
        value = fields.get(name)
        plain = str(value) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None
        return scrub(plain, provider)

    relayed = {
        "message": text("message") or f"The upstream provider '{provider.name}' failed mid-stream.",
        "type": text("type") or "upstream_error",
        "param": text("param"),
        "code": text("code"),
    }
    return StreamEvent(payload=orjson.dumps({"error": relayed}), error=True)
