"""Sharing the routing state of instances through Redis, off the request path: a background
task publishes what this process learned since the last round (latency averages it measured,
breakers it opened or closed) and reads back everyone's, every ``interval`` seconds. Requests
only read the in-process boards, so routing adds no Redis round trip to a request; the price is
that another instance learns of an opened breaker within one interval."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from routing.breaker import BreakerBoard
from routing.latency import LatencyBoard

logger = logging.getLogger(__name__)


class RedisRoutingSync:
    """Two hashes under ``prefix``: ``latency`` (deployment id -> ms) and ``breakers``
    (deployment id -> wall time the breaker opened; removed when it closed)."""

    def __init__(
        self,
        *,
        latency: LatencyBoard,
        breakers: BreakerBoard,
        client: aioredis.Redis,
        prefix: str,
        on_error: Callable[[], None] = lambda: None,
    ) -> None:
        self._on_error = on_error  # counts failed Redis calls (metrics)
        self._latency = latency
        self._breakers = breakers
        self._client = client
        self._latency_key = f"{prefix}latency"
        self._breaker_key = f"{prefix}breakers"

    async def sync_once(self) -> None:
        measured = self._latency.take_dirty()
        changes = self._breakers.take_changes()
        closed = [str(k) for k, v in changes.items() if v == 0]
        async with self._client.pipeline(transaction=False) as pipe:
            if measured:
                pipe.hset(self._latency_key, mapping={str(k): f"{v:.3f}" for k, v in measured.items()})
            if len(closed) < len(changes):
                pipe.hset(self._breaker_key, mapping={str(k): repr(v) for k, v in changes.items() if v > 0})
            if closed:
                pipe.hdel(self._breaker_key, *closed)
            pipe.hgetall(self._latency_key)
            pipe.hgetall(self._breaker_key)
            results = await pipe.execute()
        latency: dict[bytes, bytes] = results[-2]
        breakers: dict[bytes, bytes] = results[-1]
        self._latency.merge({int(k): float(v) for k, v in latency.items()})
        shared = {int(k): float(v) for k, v in breakers.items()}
        known_closed = {
            deployment_id: 0.0 for deployment_id in self._breakers.states() if deployment_id not in shared
        }
        self._breakers.merge({**known_closed, **shared})

    async def run(self, interval: float) -> None:
        while True:
            try:
                await self.sync_once()
            except (RedisError, OSError, ValueError) as exc:
                self._on_error()
                logger.warning("routing state sync failed, using this process's view: %s", exc)
            await asyncio.sleep(interval)
