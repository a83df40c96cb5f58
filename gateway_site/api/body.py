"""Request bodies of the API: read when the view asks, after it authenticated the caller, and
never past ``GATEWAY_MAX_BODY_BYTES``.

The lean handler (``gateway_site.asgi``) starts a view before the body of its request was read:
the view reads it with ``await request_body(request)``. Under Daphne (``gateway_site.http_edge``)
nothing of the body is read from the socket before that call, so a refused request (a bad key, a
body over the limit) costs no more than its headers. ``request.body`` holds the bytes once read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest

from gateway_site.api.errors import PayloadTooLarge, RequestError

Receive = Callable[[], Awaitable[Mapping[str, Any]]]


class LengthRequired(RequestError):
    status = 411
    code = "length_required"


class UnsupportedMediaType(RequestError):
    status = 415
    code = "unsupported_media_type"


class BodyStream:
    """The body of one request as its ASGI server delivers it: read once, on demand, up to a
    limit. The handler's disconnect watcher waits on ``disconnected`` meanwhile."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._content: bytes | None = None
        self._gone = False
        self._listen = asyncio.Event()  # the body was read whole, or the client went away

    @property
    def content(self) -> bytes:
        if self._content is None:
            raise RuntimeError("The request body was not read yet: await request_body(request).")
        return self._content

    async def read(self, *, limit: int) -> bytes:
        """The whole body; PayloadTooLarge as soon as it passes ``limit`` bytes (nothing more is
        read), RequestAborted when the client disconnects first."""
        if self._content is not None:
            return self._content
        received = bytearray()
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self._gone = True
                self._listen.set()
                raise RequestAborted()
            received += message.get("body", b"")
            if len(received) > limit:
                raise PayloadTooLarge(f"The request body exceeds the limit of {limit} bytes.")
            if not message.get("more_body", False):
                break
        self._content = bytes(received)
        self._listen.set()
        return self._content

    async def disconnected(self) -> None:
        """Raise RequestAborted when the client disconnects. Before the body was read whole,
        the reader sees a disconnect (after it, only a disconnect can come); a body left unread
        is never read here: its request is being answered."""
        await self._listen.wait()
        while not self._gone:
            message = await self._receive()
            self._gone = message["type"] == "http.disconnect"
        raise RequestAborted()


class StreamedASGIRequest(ASGIRequest):
    """Django's ASGI request, created before its body was read (``body_stream``)."""

    body_stream: BodyStream | None = None

    @property
    def body(self) -> bytes:
        if self.body_stream is None:
            return super().body
        return self.body_stream.content


def announces_body(headers: Mapping[str, str]) -> bool:
    return "transfer-encoding" in headers or headers.get("content-length", "0") not in ("", "0")


async def request_body(request: HttpRequest, *, limit: int | None = None) -> bytes:
    """The request's body, at most ``limit`` bytes (default ``GATEWAY_MAX_BODY_BYTES``): 415
    for a multipart body and 411 for a body without a declared length or chunked encoding, both
    before anything is read; 413 as soon as the body passes the limit."""
    limit = settings.GATEWAY_MAX_BODY_BYTES if limit is None else limit
    headers = request.headers
    if headers.get("content-type", "").lower().startswith("multipart/"):
        raise UnsupportedMediaType(
            "The request body must be JSON (Content-Type: application/json), not multipart."
        )
    if "content-length" not in headers and "transfer-encoding" not in headers:
        raise LengthRequired("Send the request body with a Content-Length or chunked transfer encoding.")
    if not isinstance(request, StreamedASGIRequest) or request.body_stream is None:
        return request.body
    try:
        return await request.body_stream.read(limit=limit)
    except RequestAborted:
        # Not an error of the view's: the handler's watcher reports the disconnect and
        # cancels the view waiting here.
        gone: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        return await gone
