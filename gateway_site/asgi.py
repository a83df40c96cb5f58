"""The ASGI application: ``daphne gateway_site.asgi:application``.

The API and the probes go to a Django handler with no middleware (each of Django's built-in
middleware costs thread hops per request under ASGI); everything else, the admin included, goes
to the standard handler with the full stack."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import django
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_site.settings")
django.setup(set_prefix=False)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

LEAN_PREFIXES = ("/v1/", "/live", "/ready", "/health", "/metrics")


class LeanASGIHandler(ASGIHandler):
    """Django's ASGI handler with an empty middleware chain."""

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        self._middleware_chain = convert_exception_to_response(self._get_response_async)


def build_application() -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    from gateway_site.runtime import get_runtime

    standard = ASGIHandler()
    lean = LeanASGIHandler()
    get_runtime().watcher.current()  # load the snapshot before the first request

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
