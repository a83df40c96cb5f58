"""The floor for streamed requests (``bench.ttft_stages``): the thinnest streaming relay we can
put on Daphne. A bare ASGI callable, no Django, no auth, no parsing: it reads the request body,
posts it to ``BENCH_UPSTREAM_URL`` (the upstream's chat completions URL) over one aiohttp session
per event loop, and hands each piece of the upstream's SSE answer to Daphne as it arrives. What
it adds to the time to first token is what any proxy on this server pays before doing any work
of its own: ``daphne bench.stream_floor_app:application``."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

UPSTREAM_URL = os.environ.get("BENCH_UPSTREAM_URL", "")
_sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}


def _session() -> aiohttp.ClientSession:
    loop = asyncio.get_running_loop()
    session = _sessions.get(loop)
    if session is None:
        session = _sessions[loop] = aiohttp.ClientSession()
    return session


async def _read_body(receive: Receive) -> bytes:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    return bytes(body)


async def _start(send: Send, status: int, content_type: bytes) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type)]}
    )


async def _relay(receive: Receive, send: Send) -> None:
    body = await _read_body(receive)
    headers = {"Content-Type": "application/json"}
    async with _session().post(UPSTREAM_URL, data=body, headers=headers) as resp:
        await _start(send, 200, b"text/event-stream")
        async for chunk in resp.content.iter_any():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def application(scope: Message, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":  # Daphne sends no lifespan events
        return
    if scope["method"] == "POST" and scope["path"] == "/v1/chat/completions":
        await _relay(receive, send)
        return
    if scope["method"] == "GET" and scope["path"] == "/live":
        status, body = 200, b'{"status":"ok"}'
    else:
        status, body = 404, b'{"error":"not found"}'
    await _start(send, status, b"application/json")
    await send({"type": "http.response.body", "body": body})
