"""How a translating adapter turns a vendor's error status into what the OpenAI client sees.
One policy for every vendor, so clients see the same classes whoever served them:

* 401 / 403 (the gateway's own credentials): 502 ``upstream_auth_failed``, naming the provider,
  never the credential;
* 429: 429 ``rate_limit_exceeded`` with ``retry-after`` / ``retry-after-ms`` carried over;
* overloaded (Anthropic 529, 503): 503 ``upstream_overloaded``, retry hints carried over;
* other 4xx: the same status, the vendor's message (redacted), ``invalid_request_error``;
* other 5xx: 502 ``upstream_error``.

OpenAI-compatible upstreams (``openai.map_error``) keep their own error types and codes and
are built from the same pieces: ``credentials_rejected``, ``client_error``, ``server_error``.
"""

from __future__ import annotations

from collections.abc import Mapping

from providers.errors import UpstreamHTTPError, redact
from providers.types import ProviderConfig

RETRY_HEADERS = ("retry-after", "retry-after-ms")
OVERLOADED = (503, 529)


def retry_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: headers[name] for name in RETRY_HEADERS if name in headers}


def vendor_error(
    status: int,
    message: str,
    *,
    provider: ProviderConfig,
    headers: Mapping[str, str],
    code: str | None = None,
    param: str | None = None,
) -> UpstreamHTTPError:
    """``message`` and ``code`` are the vendor's; ``headers`` are the retry hints to pass on."""
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
        return client_error(status, text, code=code, param=param, headers=retry)
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
