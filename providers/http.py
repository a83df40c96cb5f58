"""The one factory for the upstream HTTP client.

httpx is the API; the transport is aiohttp's (``httpx-aiohttp``) because httpx's default
transport costs ~2 ms CPU per request under concurrency and caps near 500 req/s per core
(encode/httpx#3215; numbers in BENCHMARK.md)."""

from __future__ import annotations

import httpx
from httpx_aiohttp import AiohttpTransport


def create_http_client(
    *, max_connections: int, timeout_seconds: float, connect_timeout: float
) -> httpx.AsyncClient:
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections, keepalive_expiry=30
    )
    transport = AiohttpTransport(limits=limits, trust_env=False)
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(timeout_seconds, connect=connect_timeout),
        limits=limits,
        trust_env=False,
        follow_redirects=False,
    )
