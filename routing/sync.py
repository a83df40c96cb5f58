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
from routing.stats import ROUTING_TAG, SHARED_TTL_SECONDS, StatsBoard, shared_fields, shared_key

logger = logging.getLogger(__name__)


def latency_key(prefix: str) -> str:
    """The hash of every instance's latency averages (deployment id -> ms)."""
    return f"{prefix}{ROUTING_TAG}:latency"


def breakers_key(prefix: str) -> str:
    """The hash of the breakers open anywhere (deployment id -> wall time it opened)."""
    return f"{prefix}{ROUTING_TAG}:breakers"


class RedisRoutingSync:
    """Two hashes under ``prefix``, tagged ``{routing}``: ``latency`` (deployment id -> ms) and
    ``breakers`` (deployment id -> wall time the breaker opened; removed when it closed); and
    with ``stats``, the call counts of each minute added to ``dstats:<minute>``
    (``routing.stats``)."""

    def __init__(
        self,
        *,
        latency: LatencyBoard,
        breakers: BreakerBoard,
        client: aioredis.Redis,
        prefix: str,
        stats: StatsBoard | None = None,
        on_error: Callable[[], None] = lambda: None,
    ) -> None:
        self._on_error = on_error  # counts failed Redis calls (metrics)
        self._latency = latency
        self._breakers = breakers
        self._stats = stats
        self._prefix = prefix
        self._client = client
        self._latency_key = latency_key(prefix)
        self._breaker_key = breakers_key(prefix)

    async def sync_once(self) -> None:
        measured = self._latency.take_dirty()
        changes = self._breakers.take_changes()
        closed = [str(k) for k, v in changes.items() if v == 0]
        counted = self._stats.take_dirty() if self._stats is not None else {}
        async with self._client.pipeline(transaction=False) as pipe:
            for (minute, deployment_id), counts in counted.items():
                key = shared_key(self._prefix, minute)
                for name, amount in shared_fields(counts, deployment_id).items():
                    pipe.hincrbyfloat(key, name, amount)
                pipe.expire(key, SHARED_TTL_SECONDS)
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
