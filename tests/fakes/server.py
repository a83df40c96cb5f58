"""The machinery every fake vendor upstream shares (OpenAI's included): a real aiohttp server on
127.0.0.1 in a background thread, that records each request, answers from a script of behaviours
(then a default), and collects what it found invalid in ``violations`` (and answers those
requests with the vendor's own 400, as the real service would)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import ssl
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from aiohttp import web

B = TypeVar("B")
D = TypeVar("D")

# In a scripted error's text (and headers): replaced by the credential the request presented, as
# an upstream that echoes its ``Authorization`` header would (``echo_key``).
KEY_ECHO = "{key}"


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    body: Any  # parsed JSON, or None
    raw: bytes


class Invalid(Exception):
    """What the real service would refuse; the message is what it would say."""


class LoopbackServer:
    """An aiohttp application served on an ephemeral port of 127.0.0.1 by a background thread
    with its own event loop; ``port`` is set once ``start`` returned. Every fake server and
    receiver of the tests runs on one."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    def start(
        self, app: web.Application, *, ssl_context: ssl.SSLContext | None = None, **runner_options: Any
    ) -> None:
        loop = self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name=self._name, daemon=True)
        self._thread.start()
        try:
            self._runner, self.port = asyncio.run_coroutine_threadsafe(
                _serve(app, ssl_context=ssl_context, **runner_options), loop
            ).result(10)
        except BaseException as exc:
            self.stop()
            raise RuntimeError(f"{self._name} did not start") from exc

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop).result(15)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(15)
        loop.close()
        self._loop = self._thread = self._runner = None


async def _serve(
    app: web.Application, *, ssl_context: ssl.SSLContext | None = None, **runner_options: Any
) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None, **runner_options)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    server = site._server
    assert server is not None
    return runner, server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


class FakeServer(Generic[B]):
    name = "fake"
    # True: a client that goes away cancels the handler (``asyncio.CancelledError`` inside
    # ``answer``), so a fake can count disconnects.
    cancel_on_disconnect = False

    def __init__(self, default: B) -> None:
        self.default = default
        self._script: deque[B] = deque()
        self._requests: list[RecordedRequest] = []
        self._violations: list[str] = []
        self._lock = threading.Lock()
        self._server = LoopbackServer(f"{self.name}-upstream")
        self.scheme = "http"

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def enqueue(self, *behaviours: B) -> None:
        with self._lock:
            self._script.extend(behaviours)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def violations(self) -> list[str]:
        with self._lock:
            return list(self._violations)

    def start(self, *, ssl_context: ssl.SSLContext | None = None) -> FakeServer[B]:
        """``ssl_context``: serve HTTPS with it (one that requires a client certificate makes an
        mTLS upstream)."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.scheme = "https" if ssl_context is not None else "http"
        self._server.start(
            app,
            ssl_context=ssl_context,
            shutdown_timeout=1.0,
            handler_cancellation=self.cancel_on_disconnect,
        )
        return self

    def stop(self) -> None:
        self._server.stop()

    def next_behaviour(self) -> B:
        with self._lock:
            return self._script.popleft() if self._script else self.default

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        recorded = RecordedRequest(
            method=request.method,
            path=request.raw_path.split("?", 1)[0],
            query=dict(request.query),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            raw=raw,
        )
        with self._lock:
            self._requests.append(recorded)
        try:
            return await self.answer(request, recorded)
        except Invalid as problem:
            with self._lock:
                self._violations.append(str(problem))
            return self.invalid(str(problem))

    async def answer(self, request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        raise NotImplementedError

    def invalid(self, message: str) -> web.StreamResponse:
        raise NotImplementedError


def require(condition: object, message: str) -> None:
    if not condition:
        raise Invalid(message)


def echo_key(value: Any, key: str) -> Any:
    """``value`` (JSON-like: dicts, lists, strings) with ``KEY_ECHO`` in every string, key and
    value, replaced by ``key``."""
    if isinstance(value, str):
        return value.replace(KEY_ECHO, key)
    if isinstance(value, dict):
        return {echo_key(k, key): echo_key(v, key) for k, v in value.items()}
    if isinstance(value, list):
        return [echo_key(item, key) for item in value]
    return value


def echoed(behaviour: D, key: str, *fields: str) -> D:
    """A scripted behaviour (a dataclass) with ``KEY_ECHO`` replaced by ``key`` in ``fields``."""
    changes = {name: echo_key(getattr(behaviour, name), key) for name in fields}
    return dataclasses.replace(behaviour, **changes)
