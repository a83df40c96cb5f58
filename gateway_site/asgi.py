"""The ASGI application: ``daphne gateway_site.asgi:application``.

The API and the probes go to a Django handler with no middleware (each of Django's built-in
middleware costs thread hops per request under ASGI); everything else, the admin included, goes
to the standard handler with the full stack. Every path under ``/v1`` goes to the API, whatever
its case, so that an unknown one is answered in the API's error envelope.

Under Daphne, the HTTP layer is ``gateway_site.http_edge`` (installed here): a request reaches
the application when its headers are complete, and its body is read only as the view asks for
it (``gateway_site.api.body``). WebSockets go to Django Channels: the admin's live tail
(``gateway_site.console.live_tail``), the only one served."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

import django
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.exception import convert_exception_to_response
from django.http import HttpRequest, HttpResponseBase
from django.urls import get_resolver, path, re_path, set_script_prefix, set_urlconf

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_site.settings")
django.setup(set_prefix=False)

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from gateway_site import http_edge  # noqa: E402
from gateway_site.api.body import BodyStream, StreamedASGIRequest, announces_body  # noqa: E402
from gateway_site.observability.tracing import configure_tracing, record_response, server_span  # noqa: E402

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]

LEAN_URLCONF = "gateway_site.api.urls"
PROBE_PREFIXES = ("/live", "/ready", "/health", "/metrics")


def is_lean(path: str) -> bool:
    """The API (any case: ``/V1/...`` is the API's 404, not the admin's page) and the probes."""
    return path[:4].lower() in ("/v1/", "/v1") or path.startswith(PROBE_PREFIXES)


class LeanASGIHandler(ASGIHandler):
    """Django's ASGI handler for the API: no middleware, and none of the per-request thread
    hops of the standard handler (request_started/finished signal receivers and
    ``response.close`` run through ``sync_to_async``, a new thread per request under
    ``ThreadSensitiveContext``). Views on this path never touch the ORM from the event loop,
    so those receivers (query log reset, closing stale DB connections) have nothing to do."""

    request_class = StreamedASGIRequest

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware: list[Any] = []
        self._template_response_middleware: list[Any] = []
        self._exception_middleware: list[Any] = []
        get_response = self._get_response_async  # type: ignore[attr-defined]
        self._middleware_chain = convert_exception_to_response(get_response)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        with server_span(scope):
            await self._handle(scope, receive, send)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        stream = BodyStream(receive)
        request = await self._start(scope, stream, send)
        if request is None:
            return
        responder = asyncio.ensure_future(self._respond(request, send))
        watcher = asyncio.ensure_future(stream.disconnected())
        try:
            await asyncio.wait((responder, watcher), return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Whichever is still running is cancelled: a disconnect cancels the view (and
            # with it the upstream call); a finished response stops the watcher.
            for task in (watcher, responder):
                if not task.done():
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError, RequestAborted):
                    await task

    async def _start(self, scope: Scope, stream: BodyStream, send: Send) -> HttpRequest | None:
        """The request, created before its body is read: the view reads a body
        (``request_body``) after it authenticated the caller. An empty body is read at once, so
        the disconnect watcher listens from the start. None when there is nothing to serve."""
        set_script_prefix(get_script_prefix(scope))
        created, error_response = self.create_request(scope, io.BytesIO())
        if created is None:
            if error_response is not None:
                await self.send_response(error_response, send)
            return None
        request = cast(StreamedASGIRequest, created)
        request.body_stream = stream
        if not announces_body(request.headers):
            try:
                await stream.read(limit=0)
            except RequestAborted:
                return None
        return request

    async def _respond(self, request: HttpRequest, send: Send) -> None:
        set_urlconf(LEAN_URLCONF)
        request.urlconf = LEAN_URLCONF  # resolve_request reads it (else ROOT_URLCONF)
        response = await cast(Awaitable[HttpResponseBase], self._middleware_chain(request))
        record_response(request, response)
        try:
            await self.send_response(response, send)
        finally:
            for closer in getattr(response, "_resource_closers", ()):
                closer()
            request.close()


def build_application() -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """HTTP (the API and the probes to the lean handler, the rest to Django's) and lifespan as
    ever; WebSockets to Channels (``websockets``)."""
    from gateway_site.runtime.process import get_runtime

    http_edge.install()
    configure_tracing()  # before the standard handler loads its middleware (Django instrumentation)
    standard = ASGIHandler()
    lean = LeanASGIHandler()
    get_runtime().watcher.current()  # load the snapshot before the first request
    get_resolver(LEAN_URLCONF).resolve("/v1/models")  # import the API views and what they use
    # What is loaded at this point lives as long as the process: out of the collector's reach, a
    # full collection under load scans only what requests made since, not the whole start-up heap
    # (the pause it saves: docs/benchmarks.md).
    gc.collect()
    gc.freeze()

    async def application(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_lean(scope["path"]):
            await lean(scope, receive, send)
        elif scope["type"] == "lifespan":
            await _lifespan(receive, send)
        else:
            await standard(scope, receive, send)

    get_runtime().tail.start()
    router = ProtocolTypeRouter({"http": application, "lifespan": application, "websocket": websockets()})
    return cast(Callable[[Scope, Receive, Send], Awaitable[None]], router)


def websockets() -> Any:
    """The one WebSocket: the admin's live tail, for a staff session from a page of this host.
    Every other path, a foreign origin and a non-staff user: the handshake is refused (Daphne
    answers 403), never a stack trace."""
    from gateway_site.console.live_tail import LiveTailConsumer, RefuseConsumer

    routes = URLRouter(
        [path("admin/live/ws", LiveTailConsumer.as_asgi()), re_path(r"", RefuseConsumer.as_asgi())]
    )
    return AllowedHostsOriginValidator(AuthMiddlewareStack(routes))


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


application = build_application()
