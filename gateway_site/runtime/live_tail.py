"""The admin's live tail, on the gateway's side: finished requests handed to the staff watching
``/admin/live/`` (``gateway_site.console.live_tail``) through Django Channels' layer.

The request path pays one attribute read (``LiveTail.watched``) while nobody watches. While
someone does, a finished request is appended to a list; a task of the event loop sends the list
to the layer's group every ``flush_seconds`` (one message per batch, off the request path).

Who watches: each socket registers in a Redis sorted set (its channel name, with a lease that the
socket renews) when the layer is shared (channels-redis), and each process reads the set's size
once per ``poll_seconds`` from a background thread; with the in-memory layer, the process counts
its own sockets."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from accounting.recorder import UsageEvent
from quotas.money import usd
from quotas.stores.redis_target import async_client, sync_client

logger = logging.getLogger(__name__)

GROUP = "live-tail"
WATCH_LEASE_SECONDS = 30.0  # a socket renews its registration every third of this
MAX_PENDING = 2000  # per flush; past it, rows are dropped (the tail is a sample, not a log)


def tail_row(event: UsageEvent) -> dict[str, Any]:
    """What the page shows of a finished request (the key's display prefix only, no content)."""
    deployment = f"{event.provider}/{event.upstream_model}" if event.provider else ""
    return {
        "at": dt.datetime.fromtimestamp(event.created_at, tz=dt.UTC).strftime("%H:%M:%S"),
        "request_id": event.request_id,
        "tenant": event.tenant_name,
        "key": f"{event.key_prefix}…",
        "endpoint": event.endpoint,
        "model": event.model,
        "deployment": "cache" if event.cache_hit else deployment,
        "status": event.status,
        "latency_ms": round(event.latency_ms, 1),
        "tokens": event.prompt_tokens + event.completion_tokens,
        "cost": usd(event.cost_usd),
    }


Send = Callable[[str, dict[str, Any]], Awaitable[None]]


async def _nowhere(group: str, message: dict[str, Any]) -> None:
    return None


class LiveTail:
    def __init__(
        self,
        *,
        redis_url: str,
        shared: bool,
        prefix: str,
        send: Send,
        poll_seconds: float = 1.0,
        flush_seconds: float = 0.25,
        lease_seconds: float = WATCH_LEASE_SECONDS,
    ) -> None:
        self.watched = False  # the one thing the request path reads
        self._redis_url = redis_url if shared else ""
        self._key = f"{prefix}live-tail:watchers"
        self._send = send
        self._poll_seconds = poll_seconds
        self._flush_seconds = flush_seconds
        self.lease_seconds = lease_seconds
        self._local = 0
        self._pending: list[UsageEvent] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    @classmethod
    def inert(cls) -> LiveTail:
        """A tail nobody can watch (a sink built without one)."""
        return cls(redis_url="", shared=False, prefix="", send=_nowhere)

    # --- the request path ------------------------------------------------------------------

    def offer(self, event: UsageEvent) -> None:
        """A finished request, for the watchers (call only when ``watched``): never blocks,
        never raises."""
        if len(self._pending) >= MAX_PENDING:
            return
        self._pending.append(event)
        if len(self._pending) == 1:
            try:
                asyncio.get_running_loop().call_later(self._flush_seconds, self._start_flush)
            except RuntimeError:
                self._pending.clear()

    def _start_flush(self) -> None:
        task = asyncio.get_running_loop().create_task(self._flush())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush(self) -> None:
        events, self._pending = self._pending, []
        try:
            await self._send(GROUP, {"type": "tail.rows", "rows": [tail_row(e) for e in events]})
        except Exception as exc:  # a layer that fails loses these rows, nothing else
            logger.warning("live tail: %d row(s) not sent: %s", len(events), type(exc).__name__)

    # --- the watchers ------------------------------------------------------------------------

    async def watch(self, channel: str) -> None:
        """A socket starts (or goes on) watching."""
        if not self._redis_url:
            self._local += 1
            self.watched = True
            return
        await self.renew(channel)
        self.watched = True  # this process at once, the others at their next poll

    async def renew(self, channel: str) -> None:
        """Extend a socket's registration by a lease (the socket does so every third of one)."""
        if self._redis_url:
            lease = int((time.time() + self.lease_seconds) * 1000)
            await self._redis(lambda client: client.zadd(self._key, {channel: lease}))

    async def unwatch(self, channel: str) -> None:
        if not self._redis_url:
            self._local = max(0, self._local - 1)
            self.watched = self._local > 0
            return
        await self._redis(lambda client: client.zrem(self._key, channel))

    async def _redis(self, call: Callable[[Any], Awaitable[Any]]) -> None:
        client = async_client(self._redis_url, timeout=2.0, max_connections=2)
        try:
            await call(client)
        finally:
            await client.aclose()

    def start(self) -> None:
        """With a shared layer, poll who watches in a background thread (idempotent)."""
        if not self._redis_url or self._poller is not None:
            return
        self._poller = threading.Thread(target=self._poll, name="live-tail-watchers", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        client = sync_client(self._redis_url, timeout=2.0)
        try:
            while not self._stop.is_set():
                try:
                    now_ms = int(time.time() * 1000)
                    pipe = client.pipeline(transaction=False)
                    pipe.zremrangebyscore(self._key, "-inf", now_ms)
                    pipe.zcard(self._key)
                    self.watched = int(pipe.execute()[1]) > 0
                except Exception as exc:  # Redis away: nobody can be reached anyway
                    self.watched = False
                    logger.debug("live tail: watchers unknown: %s", type(exc).__name__)
                self._stop.wait(self._poll_seconds)
        finally:
            client.close()

    def stop(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=5)
