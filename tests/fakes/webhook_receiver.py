"""A webhook receiver: a real aiohttp server on 127.0.0.1 (its own thread and event loop) that
records every JSON body POSTed to it, for tests of outgoing notifications."""

from __future__ import annotations

import json
import threading
from typing import Any

from aiohttp import web

from tests.fakes.server import LoopbackServer


class WebhookReceiver:
    def __init__(self) -> None:
        self._received: list[Any] = []
        self._lock = threading.Lock()
        self._server = LoopbackServer("webhook-receiver")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.port}/alerts"

    @property
    def received(self) -> list[Any]:
        with self._lock:
            return list(self._received)

    def start(self) -> WebhookReceiver:
        app = web.Application()
        app.router.add_post("/alerts", self._handle)
        self._server.start(app)
        return self

    def stop(self) -> None:
        self._server.stop()

    async def _handle(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        with self._lock:
            self._received.append(body)
        return web.json_response({"ok": True})
