"""The ASGI application: ``daphne gateway_site.asgi:application``.

The API and the probes go to a Django handler with no middleware (each of Django's built-in
middleware costs thread hops per request under ASGI); everything else, the admin included, goes
to the standard handler with the full stack."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

import django
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.exception import convert_exception_to_response
from django.http import HttpRequest, HttpResponseBase
from django.urls import get_resolver, set_script_prefix, set_urlconf

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_site.settings")
django.setup(set_prefix=False)

from gateway_site.tracing import configure_tracing, record_response, server_span  # noqa: E402

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]

LEAN_URLCONF = "gateway_site.api_urls"
LEAN_PREFIXES = ("/v1/", "/live", "/ready", "/health", "/metrics")


class LeanASGIHandler(ASGIHandler):
    """Django's ASGI handler for the API: no middleware, and none of the per-request thread
    hops of the standard handler (request_started/finished signal receivers and
    ``response.close`` run through ``sync_to_async``, a new thread per request under
    ``ThreadSensitiveContext``). Views on this path never touch the ORM from the event loop,
    so those receivers (query log reset, closing stale DB connections) have nothing to do."""

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
        try:
            body = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        request, error_response = self.create_request(scope, body)
        if request is None:
            body.close()
            if error_response is not None:
                await self.send_response(error_response, send)
            return
        responder = asyncio.ensure_future(self._respond(request, send))
        watcher = asyncio.ensure_future(self.listen_for_disconnect(receive))
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
            body.close()

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
    from gateway_site.runtime import get_runtime

    configure_tracing()  # before the standard handler loads its middleware (Django instrumentation)
    standard = ASGIHandler()
    lean = LeanASGIHandler()
    get_runtime().watcher.current()  # load the snapshot before the first request
    get_resolver(LEAN_URLCONF).resolve("/v1/models")  # import the API views and what they use
    # What is loaded by now lives as long as the process: out of the collector's reach, a full
    # collection under load scans only what requests made since (a pause of ~100 ms otherwise).
    gc.collect()
    gc.freeze()

    async def application(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(LEAN_PREFIXES):
            await lean(scope, receive, send)
        elif scope["type"] == "lifespan":
            await _lifespan(receive, send)
        else:
            await standard(scope, receive, send)

    return application


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


application = build_application()
