"""A webhook receiver: a real aiohttp server on 127.0.0.1 (its own thread and event loop) that
records every JSON body POSTed to it, for tests of outgoing notifications."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from aiohttp import web

from tests.fakes.server import start_on_loopback


class WebhookReceiver:
    def __init__(self) -> None:
        self._received: list[Any] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="webhook-receiver", daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/alerts"

    @property
    def received(self) -> list[Any]:
        with self._lock:
            return list(self._received)

    def start(self) -> WebhookReceiver:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._startup(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _startup(self) -> None:
        app = web.Application()
        app.router.add_post("/alerts", self._handle)
        self._runner, self.port = await start_on_loopback(app)

    async def _handle(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        with self._lock:
            self._received.append(body)
        return web.json_response({"ok": True})
