"""The one factory for the upstream HTTP connection pool, and the small object it returns.

httpx is the API (``httpx.Request`` / ``httpx.Response``); the transport is aiohttp's
(``httpx-aiohttp``) because httpx's default transport costs several times more CPU per request
under concurrency (encode/httpx#3215; measured in docs/benchmarks.md).

Requests go straight to the transport (``AsyncBaseTransport.handle_async_request``), not
through ``httpx.AsyncClient``: the client's URL merging, auth flow, redirect handling, event
hooks and cookie jar cost CPU on every request and the gateway uses none of them. Worse, a
shared cookie jar would send one upstream's ``Set-Cookie`` back on every other tenant's
requests; aiohttp's session jar is replaced by a ``DummyCookieJar`` for the same reason."""

from __future__ import annotations

import functools
import ssl
from collections.abc import Mapping

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from providers.types import UpstreamTls

KEEPALIVE_SECONDS = 30.0

# What httpx's client adds to every request, sent so upstreams see the request an httpx client
# would send (aiohttp would otherwise add its own user-agent and encodings).
DEFAULT_HEADERS = {
    "accept-encoding": "gzip, deflate",
    "connection": "keep-alive",
    "user-agent": f"python-httpx/{httpx.__version__}",
}


@functools.lru_cache(maxsize=4096)
def parsed_url(url: str) -> httpx.URL:
    """``url`` parsed once: a provider's few URLs recur on every request, and parsing one is
    about half of building an ``httpx.Request``. (An ``httpx.URL`` is immutable.)"""
    return httpx.URL(url)


class UpstreamHTTP:
    """The process's connection pool to upstream providers: builds a POST with its timeouts,
    sends it, returns the response unread (the caller reads or streams it, then closes it)."""

    def __init__(
        self, transport: httpx.AsyncBaseTransport, *, timeout_seconds: float, connect_timeout: float
    ) -> None:
        self._transport = transport
        self._timeout_seconds = timeout_seconds
        self._connect_timeout = connect_timeout

    def request(
        self, url: str, *, headers: Mapping[str, str], content: bytes, timeout_seconds: float | None = None
    ) -> httpx.Request:
        """A POST whose connect, write, read and pool waits are each bounded by
        ``timeout_seconds`` (default: the pool's), connecting by at most the connect timeout."""
        seconds = self._timeout_seconds if timeout_seconds is None else timeout_seconds
        timeouts = {
            "connect": min(seconds, self._connect_timeout),
            "read": seconds,
            "write": seconds,
            "pool": seconds,
        }
        return httpx.Request(
            "POST",
            parsed_url(url),
            headers={**DEFAULT_HEADERS, **headers},
            content=content,
            extensions={"timeout": timeouts},
        )

    async def send(self, request: httpx.Request) -> httpx.Response:
        """Raises ``httpx.TransportError`` subclasses (``translation.upstream.transport_failure``
        classifies them)."""
        return await self._transport.handle_async_request(request)

    async def aclose(self) -> None:
        await self._transport.aclose()


def tls_context(tls: UpstreamTls) -> ssl.SSLContext:
    """The context of a provider's TLS settings: its CA bundle (else the system's) and its
    client certificate and key for mTLS; TLS 1.2 at least, hostnames checked."""
    context = ssl.create_default_context(cafile=tls.ca_bundle or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls.client_cert:
        context.load_cert_chain(tls.client_cert, tls.client_key or None)
    return context


def create_http_client(
    *,
    max_connections: int,
    timeout_seconds: float,
    connect_timeout: float,
    traced: bool = False,
    tls: UpstreamTls | None = None,
) -> UpstreamHTTP:
    """``timeout_seconds`` is the default for requests that name none; ``connect_timeout``
    caps every request's connect phase. Up to ``max_connections`` connections, all kept alive
    for 30 s when idle. ``traced``: each request gets an OpenTelemetry HTTP client span and
    carries the W3C ``traceparent`` header (the transport wrapped by the httpx instrumentation,
    whose global patching would not see a bare transport). ``tls``: a provider's own CA bundle
    and client certificate (``tls_context``); raises OSError or ssl.SSLError for unusable files."""

    def session() -> aiohttp.ClientSession:
        # Called by the transport on its first request, inside the running event loop.
        connector = aiohttp.TCPConnector(
            limit=max_connections, keepalive_timeout=KEEPALIVE_SECONDS, ssl=transport.ssl_context
        )
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

    transport = AiohttpTransport(
        trust_env=False, client=session, verify=tls_context(tls) if tls is not None else True
    )
    outer: httpx.AsyncBaseTransport = transport
    if traced:
        from opentelemetry.instrumentation.httpx import AsyncOpenTelemetryTransport

        outer = AsyncOpenTelemetryTransport(transport)  # its aclose() closes ``transport``
    return UpstreamHTTP(outer, timeout_seconds=timeout_seconds, connect_timeout=connect_timeout)
