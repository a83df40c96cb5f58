"""The Python upstreams, each run as its own process on a listening socket it inherits:
``python -m bench.servers {fixed,delay,stream,chat} --fd N``.

- ``fixed``: a bare asyncio protocol answering every request with the same ``chat.completion``
  (the fallback when nginx is not installed; nearly as cheap).
- ``delay``: aiohttp.web, the same answer after a fixed 50 ms.
- ``stream``: aiohttp.web, an SSE stream: first chunk after 50 ms, then one every 10 ms, the
  usage chunk, ``data: [DONE]``.
- ``chat``: aiohttp.web, the ``stream`` answer when the request asks to stream, else the
  ``delay`` one (the chaos profile's upstream)."""

from __future__ import annotations

import argparse
import asyncio
import collections
import signal
import socket
import time

import orjson
from aiohttp import web

from bench.payloads import STREAM_CHUNK_GAP, STREAM_FIRST_DELAY, UPSTREAM_DELAY, completion, stream_events

CHAT_PATH = "/v1/chat/completions"


def fixed_http_response(body: bytes) -> bytes:
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


class FixedResponseProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive with Content-Length bodies (what wrk and the gateway send): read a
    request, discard it, write the canned response."""

    def __init__(self, response: bytes) -> None:
        self._response = response
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while self._transport is not None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            total = end + 4 + _content_length(bytes(self._buffer[:end]))
            if len(self._buffer) < total:
                return
            del self._buffer[:total]
            self._transport.write(self._response)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None


async def _delayed(request: web.Request) -> web.Response:
    await request.read()
    await asyncio.sleep(UPSTREAM_DELAY)
    return web.Response(body=request.app["completion"], content_type="application/json")


async def _streamed(request: web.Request) -> web.StreamResponse:
    arrived = time.time()
    await request.read()
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    await asyncio.sleep(STREAM_FIRST_DELAY)
    request.app["times"].append((arrived, time.time()))  # for bench.ttft_stages
    for index, event in enumerate(request.app["events"]):
        if index:
            await asyncio.sleep(STREAM_CHUNK_GAP)
        await response.write(event)
    await response.write_eof()
    return response


async def _chat(request: web.Request) -> web.StreamResponse:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return web.json_response(
            {"error": {"message": "not JSON", "type": "invalid_request_error"}}, status=400
        )
    streamed = isinstance(body, dict) and body.get("stream") is True
    return await (_streamed(request) if streamed else _delayed(request))


def build_app(kind: str) -> web.Application:
    app = web.Application()
    app["completion"] = completion()
    app["events"] = stream_events()
    app.router.add_post(CHAT_PATH, {"delay": _delayed, "stream": _streamed, "chat": _chat}[kind])
    # When each of the last streams arrived and when its first chunk was written (wall clock).
    app["times"] = collections.deque(maxlen=10_000)
    app.router.add_get("/times", _times)
    return app


async def _times(request: web.Request) -> web.Response:
    return web.json_response(list(request.app["times"]))


async def serve(kind: str, sock: socket.socket) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if kind == "fixed":
        response = fixed_http_response(completion())
        server = await loop.create_server(lambda: FixedResponseProtocol(response), sock=sock)
        async with server:
            await stop.wait()
        return
    runner = web.AppRunner(build_app(kind), access_log=None, handle_signals=False)
    await runner.setup()
    await web.SockSite(runner, sock, backlog=1024).start()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=["fixed", "delay", "stream", "chat"])
    parser.add_argument("--fd", type=int, required=True, help="An inherited listening socket.")
    args = parser.parse_args()
    sock = socket.socket(fileno=args.fd)
    sock.setblocking(False)
    asyncio.run(serve(args.kind, sock))


if __name__ == "__main__":
    main()
