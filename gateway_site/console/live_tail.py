"""The admin's live tail: a staff-only page (``/admin/live/``) that shows requests as they finish,
fed over a WebSocket (``/admin/live/ws``, Django Channels) by the gateway's ``LiveTail``
(``gateway_site.runtime.live_tail``). The socket is authenticated by the admin's session; any
other user, and an anonymous one, is refused at the handshake."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from gateway_site.runtime.live_tail import GROUP
from gateway_site.runtime.process import get_runtime
from quotas.tenancy import is_platform

MAX_ROWS = 200  # rows the page keeps, newest first


def live_tail_page(request: HttpRequest) -> HttpResponse:
    context = {
        **admin.site.each_context(request),
        "title": "Live tail",
        "max_rows": MAX_ROWS,
        "columns": [
            "time",
            "tenant",
            "key",
            "endpoint",
            "model",
            "deployment",
            "status",
            "latency",
            "tokens",
            "cost",
        ],
    }
    return TemplateResponse(request, "admin/live_tail.html", context)


def may_watch(user: Any) -> bool:
    """Platform staff only: the tail shows every tenant's requests (a tenant admin's socket is
    refused as an anonymous one is)."""
    return bool(user is not None and user.is_active and user.is_staff and is_platform(user))


class LiveTailConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """One watcher: joins the tail's group and relays its batches of rows."""

    watching = False
    renewal: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        # Permissions are read from the database: off the event loop.
        if not await database_sync_to_async(may_watch)(self.scope.get("user")):
            await self.close()  # before accepting: the handshake is refused (403)
            return
        await self.channel_layer.group_add(GROUP, self.channel_name)
        await get_runtime().tail.watch(self.channel_name)  # before the page hears it is live
        self.watching = True
        await self.accept()
        self.renewal = asyncio.ensure_future(self._renew())

    async def _renew(self) -> None:
        tail = get_runtime().tail
        while True:
            await asyncio.sleep(tail.lease_seconds / 3)
            await tail.renew(self.channel_name)

    async def disconnect(self, code: int) -> None:
        if self.renewal is not None:
            self.renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.renewal
        if self.watching:
            self.watching = False
            await get_runtime().tail.unwatch(self.channel_name)
            await self.channel_layer.group_discard(GROUP, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        return None  # the page sends nothing

    async def tail_rows(self, message: dict[str, Any]) -> None:
        await self.send_json({"rows": message["rows"]})


class RefuseConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """Any other WebSocket path: refused at the handshake."""

    async def connect(self) -> None:
        await self.close()
