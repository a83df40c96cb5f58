"""The chaos profile's load: an asyncio (aiohttp) client in a thread of its own that keeps
``concurrency`` requests going, JSON and streamed in turn, for as long as the run lasts, while
the main thread makes the faults. Every request it sends carries its own ``x-request-id`` and
is kept (``Sent``): the phase it started in, streamed or not, the status, the OpenAI error code,
the ``x-request-id`` the gateway answered with, and whether it completed, was cut, or was
aborted by the client on purpose. Bursts (many requests at once on fresh connections) and
single probes are sent on request."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import orjson

from bench.payloads import chat_request

# A refused request (not admitted) leaves no usage record; these are the refusals' statuses
# and, for a 503, the codes of the refusals that come before admission.
REFUSED_STATUSES = frozenset({400, 401, 403, 404, 405, 413, 429})
REFUSED_503_CODES = frozenset({"overloaded", "rate_limiter_unavailable"})
# Every deployment's breaker open: refused before admission when found while planning the route
# (the response then carries no x-ratelimit-* header, which every admitted response of a key
# with a tier carries), admitted and recorded when found while retrying.
NO_DEPLOYMENT = "no_deployment_available"
ADMITTED_HEADER = "x-ratelimit-limit-requests"
CLIENT_TIMEOUT_S = 30.0
ABORT_AFTER_CHUNKS = 3
PAUSE_AFTER_FAILURE_S = 0.05
T = TypeVar("T")


@dataclass
class Sent:
    client_id: str
    phase: str
    streamed: bool
    started: float  # time.time() when sent
    burst: bool = False
    ended: float = 0.0
    status: int | None = None  # None: no answer came (no status line)
    error_code: str = ""  # of an error body, or of an error event in a stream
    request_id: str = ""  # the x-request-id the gateway answered with
    rate_headers: bool = False  # the response carried x-ratelimit-* (it went through admission)
    content_chunks: int = 0
    completed: bool = False  # the JSON body read whole, or the stream up to data: [DONE]
    aborted: bool = False  # closed by this client mid-stream, on purpose
    transport_error: str = ""

    @property
    def refused(self) -> bool:
        """Answered with a refusal that comes before admission: no record, no reservation."""
        if self.status is None:
            return False
        if self.status == 503 and self.error_code == NO_DEPLOYMENT:
            return not self.rate_headers
        return self.status in REFUSED_STATUSES or (
            self.status == 503 and self.error_code in REFUSED_503_CODES
        )

    @property
    def answered(self) -> bool:
        """Admitted and answered (its status line came): the gateway owes exactly one record."""
        return self.status is not None and not self.refused

    @property
    def outcome(self) -> str:
        if self.aborted:
            return "client abort"
        if self.status is None:
            return "connection error"
        if self.status == 200:
            if self.completed:
                return "200"
            return "200 cut" if self.transport_error else "200 stream error"
        if self.status == 429:
            return "429"
        if self.status == 503 and self.error_code == "overloaded":
            return "503 shed"
        if self.status == 503 and self.error_code == "rate_limiter_unavailable":
            return "503 limiter"
        if self.status == 503 and self.error_code == NO_DEPLOYMENT:
            return "503 no deployment"
        return "4xx" if self.status < 500 else "5xx"

    def as_dict(self) -> dict[str, object]:
        return {
            "client_id": self.client_id,
            "phase": self.phase,
            "streamed": self.streamed,
            "burst": self.burst,
            "started": round(self.started, 4),
            "ended": round(self.ended, 4),
            "status": self.status,
            "error_code": self.error_code,
            "request_id": self.request_id,
            "rate_headers": self.rate_headers,
            "content_chunks": self.content_chunks,
            "outcome": self.outcome,
            "transport_error": self.transport_error,
        }


def outcomes(sent: list[Sent]) -> Counter[str]:
    return Counter(s.outcome for s in sent)


def _error_code(data: bytes) -> str:
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return ""
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(error, dict):
        return ""
    return str(error.get("code") or error.get("type") or "error")


async def _read_stream(response: aiohttp.ClientResponse, *, sent: Sent, abort: bool) -> None:
    async for line in response.content:
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            sent.completed = not sent.error_code
            return
        code = _error_code(data)
        if code:
            sent.error_code = code
        elif b'"content"' in data:
            sent.content_chunks += 1
            if abort and sent.content_chunks >= ABORT_AFTER_CHUNKS:
                sent.aborted = True
                response.close()  # drops the connection: the gateway sees the client go
                return


class Load:
    """``start()`` the client, ``probe()`` sends one request, ``run_steady()`` starts the loops;
    then ``phase = name`` as the run goes on, ``burst(n)``; ``quiet()`` ends the loops (their
    requests in flight finish), ``close()`` the client. ``sent`` holds every request sent."""

    def __init__(self, *, url: str, key: str, model: str, concurrency: int, run_id: str) -> None:
        self.url = url
        self.concurrency = concurrency
        self.run_id = run_id
        self.phase = "setup"
        self.abort_streams = False  # every other stream is closed by the client after a few chunks
        self.sent: list[Sent] = []
        self._headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self._bodies = {False: chat_request(model), True: chat_request(model, stream=True)}
        self._count = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None
        self._closing: asyncio.Event | None = None
        self._steady: list[asyncio.Task[None]] = []
        self._steady_on = True
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-load", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the load generator did not start")

    def run_steady(self) -> None:
        """Start the ``concurrency`` request loops, JSON and streamed in turn."""
        self._call(self._start_steady(), timeout=5)

    async def _start_steady(self) -> None:
        assert self._session is not None
        self._steady = [
            asyncio.create_task(self._steady_loop(self._session, n)) for n in range(self.concurrency)
        ]

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._closing = asyncio.Event()
        connector = aiohttp.TCPConnector(limit=self.concurrency + 8)
        timeout = aiohttp.ClientTimeout(total=CLIENT_TIMEOUT_S, sock_connect=5)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            self._session = session
            self._ready.set()
            await self._closing.wait()
            await self._end_steady()

    async def _steady_loop(self, session: aiohttp.ClientSession, n: int) -> None:
        streamed = n % 2 == 1
        while self._steady_on:
            sent = await self._send(session, streamed=streamed, abort=streamed and self.abort_streams)
            if sent.status != 200:
                await asyncio.sleep(PAUSE_AFTER_FAILURE_S)
            streamed = not streamed

    async def _end_steady(self) -> None:
        self._steady_on = False
        await asyncio.gather(*self._steady, return_exceptions=True)

    def _next_id(self) -> str:
        self._count += 1
        return f"{self.run_id}-{self._count:07d}"

    async def _send(
        self, session: aiohttp.ClientSession, *, streamed: bool, abort: bool = False, burst: bool = False
    ) -> Sent:
        sent = Sent(
            client_id=self._next_id(), phase=self.phase, streamed=streamed, started=time.time(), burst=burst
        )
        self.sent.append(sent)
        headers = {**self._headers, "x-request-id": sent.client_id}
        try:
            async with session.post(self.url, data=self._bodies[streamed], headers=headers) as response:
                sent.status = response.status
                sent.request_id = response.headers.get("x-request-id", "")
                sent.rate_headers = ADMITTED_HEADER in response.headers
                if response.status != 200:
                    sent.error_code = _error_code(await response.read())
                elif streamed:
                    await _read_stream(response, sent=sent, abort=abort)
                else:
                    await response.read()
                    sent.completed = True
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            sent.transport_error = type(exc).__name__
        sent.ended = time.time()
        return sent

    def _call(self, coroutine: Coroutine[Any, Any, T], *, timeout: float) -> T:
        if self._loop is None:
            raise RuntimeError("the load generator is not running")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def burst(self, size: int) -> list[Sent]:
        """``size`` streamed requests at once, each on a fresh connection; returns when all ended."""
        return self._call(self._burst(size), timeout=CLIENT_TIMEOUT_S + 30)

    async def _burst(self, size: int) -> list[Sent]:
        connector = aiohttp.TCPConnector(limit=0, force_close=True)
        timeout = aiohttp.ClientTimeout(total=CLIENT_TIMEOUT_S, sock_connect=10)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            return list(
                await asyncio.gather(*(self._send(session, streamed=True, burst=True) for _ in range(size)))
            )

    def quiet(self) -> None:
        """End the steady loops; returns once their requests in flight have ended."""
        self._call(self._end_steady(), timeout=CLIENT_TIMEOUT_S + 10)

    def probe(self, *, streamed: bool) -> Sent:
        """One request on its own (the checks after the load)."""
        assert self._session is not None
        return self._call(self._send(self._session, streamed=streamed), timeout=CLIENT_TIMEOUT_S + 5)

    def close(self) -> None:
        if self._loop is not None and self._closing is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                self._loop.call_soon_threadsafe(self._closing.set)
        self._thread.join(CLIENT_TIMEOUT_S + 10)
