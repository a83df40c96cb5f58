"""What every adapter offers the router, and the HTTP plumbing they share.

An adapter is four pure functions (``to_upstream``, ``from_upstream``, ``from_chunk``,
``map_error``) plus the thin I/O below that sends a request through the shared connection pool
(``providers.http``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp
import httpx

from providers.errors import UpstreamError, UpstreamTimeout, UpstreamUnreachable
from providers.http import UpstreamHTTP
from providers.types import Completion, DeploymentConfig, NativeRequest, StreamEvent

JsonObject = dict[str, object]


@dataclass(frozen=True, slots=True)
class UpstreamCall:
    """One attempt against one deployment. ``body`` is the client's request object; adapters
    copy it, never change it. ``native`` is the request in the client's own dialect, set only
    when the deployment's kind speaks it (then the adapter sends that instead)."""

    deployment: DeploymentConfig
    body: JsonObject
    http: UpstreamHTTP
    timeout_seconds: float
    request_id: str
    native: NativeRequest | None = None


class UpstreamStream(Protocol):
    def events(self) -> AsyncIterator[StreamEvent]: ...

    async def aclose(self) -> None: ...


class Adapter(Protocol):
    async def complete(self, call: UpstreamCall) -> Completion: ...

    async def open_stream(self, call: UpstreamCall) -> UpstreamStream:
        """Send the request and return once the upstream accepted it (status 2xx); an error
        status raises before any byte reaches the client."""
        ...


class ErrorMap(Protocol):
    """A vendor's ``map_error``: its error status and body as the error the client sees."""

    def __call__(
        self, status: int, content: bytes, headers: Mapping[str, str], deployment: DeploymentConfig, /
    ) -> UpstreamError: ...


async def post(
    call: UpstreamCall, request: tuple[str, dict[str, str], bytes], *, map_error: ErrorMap, stream: bool
) -> httpx.Response:
    """Send a translated ``(url, headers, body)``; an error status raises the vendor's mapped
    error. Streamed, the 2xx response is returned unread; else its body has been read."""
    url, headers, content = request
    response = await send(call, url=url, headers=headers, content=content, stream=stream)
    if response.status_code >= 400:
        raise map_error(response.status_code, response.content, response.headers, call.deployment)
    return response


async def send(
    call: UpstreamCall, *, url: str, headers: dict[str, str], content: bytes, stream: bool
) -> httpx.Response:
    """POST with the shared pool; transport failures become UpstreamError subclasses that
    name the provider but never its URL or credentials. The body is read (and the connection
    released) unless ``stream`` and the status is 2xx."""
    provider = call.deployment.provider.name
    request = call.http.request(url, headers=headers, content=content, timeout_seconds=call.timeout_seconds)
    try:
        async with asyncio.timeout(call.timeout_seconds):
            response = await call.http.send(request)
            if not stream or response.status_code >= 400:
                try:
                    await response.aread()
                finally:
                    await response.aclose()
            return response
    except (TimeoutError, httpx.TransportError) as exc:
        raise transport_failure(exc, provider) from None


def transport_failure(exc: BaseException, provider: str) -> UpstreamTimeout | UpstreamUnreachable:
    """Classify a transport exception. httpx-aiohttp 0.2 maps every aiohttp connection error
    (refused, reset) to ``httpx.ConnectTimeout``, so the aiohttp cause decides, not the class."""
    cause = exc.__cause__ or exc
    # asyncio.timeout() raises TimeoutError *from* the CancelledError it injected: the
    # exception itself, not its cause, says it timed out.
    timed_out = (
        isinstance(exc, TimeoutError)
        or isinstance(cause, (TimeoutError, aiohttp.ServerTimeoutError))
        or (isinstance(exc, httpx.TimeoutException) and not isinstance(cause, aiohttp.ClientError))
    )
    if timed_out:
        return UpstreamTimeout(f"The upstream provider '{provider}' did not answer in time.")
    return UpstreamUnreachable(f"The upstream provider '{provider}' could not be reached.")
