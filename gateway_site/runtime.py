"""Process-wide objects of a gateway process, built once by ``get_runtime()`` and closed at
exit: the control-plane snapshot (keys and models) kept fresh by a watcher thread, the upstream
HTTP client and router (one per event loop), the limiter (its Redis client one per event loop;
in process without ``REDIS_URL``), the response cache (its L1 process-wide, its Redis client
one per event loop; L1 only without ``REDIS_URL``), the quota alert dispatcher, the usage sink (writer, Redis
outbox) and, with Redis but no Celery broker, the outbox drainer thread."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import datetime as dt
import functools
import logging
import math
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import redis
import redis.asyncio as aioredis
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections

from accounting.prices import load_price_table
from accounting.pricing import PriceTable
from accounting.recorder import UsageWriter
from accounting.spend import recorded_spend
from gateway_site.ledger import OutboxDrainer, UsageSink
from gateway_site.metrics import observe_redis_error, redis_error_hook
from gateway_site.overload import LoadGate
from gateway_site.periodic import InProcessBeat
from providers.catalog import load_catalog
from providers.http import create_http_client
from providers.types import Catalog
from quotas.admission import Limiter
from quotas.alerts import AlertDispatcher
from quotas.registry import KeyRegistry, load_registry
from quotas.revision import current_revision, revision_channel
from quotas.store_local import LocalStore
from quotas.store_redis import RedisStore, create_client
from routing.breaker import BreakerBoard, BreakerPolicy
from routing.cache import LocalCache, ResponseCache
from routing.retry import RetryPolicy
from routing.router import Router
from routing.sync import RedisRoutingSync

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Snapshot:
    revision: int
    keys: KeyRegistry
    catalog: Catalog
    # Without Redis: each quota's spend in its current period according to the usage records,
    # the starting point of the in-process counters, by (quota id, period key).
    recorded_spend: Mapping[tuple[int, str], int] = field(default_factory=dict)
    prices: PriceTable = field(default_factory=PriceTable)  # price versions per deployment


def _recorded_spend() -> dict[tuple[int, str], int]:
    if settings.REDIS_URL:
        return {}  # the shared counters already hold it (and ``reconcilequotas`` rebuilds them)
    now = dt.datetime.now(dt.UTC)
    spends = recorded_spend(now=now, tz=settings.GATEWAY_QUOTA_TIMEZONE)
    return {(s.quota.pk, s.period.key): s.micro for s in spends}


def load_snapshot() -> Snapshot:
    revision = current_revision()  # read first: a change during the load triggers another
    return Snapshot(
        revision=revision,
        keys=load_registry(),
        catalog=load_catalog(),
        recorded_spend=_recorded_spend(),
        prices=load_price_table(),
    )


@dataclass(slots=True)
class _CheckTurns:
    """An event loop's revision checks made for requests: one at a time, counted at launch."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    launched: int = 0
    last_launch: float = -math.inf


class SnapshotWatcher:
    """Reloads the snapshot when the revision counter moves: polled every
    ``GATEWAY_CONFIG_POLL_SECONDS``, and at once on a Redis pub/sub message when configured.

    ``catch_up`` gives read-your-writes to a request the snapshot cannot serve (an unknown key
    or model): it waits for a revision check that began after it was called, so a key works the
    moment ``issuekey`` returns. Checks are coalesced: one at a time, in a thread of their own,
    at least ``CHECK_SPACING_SECONDS`` apart, and one serves every caller that asked before it
    was launched; so a burst of misses costs two checks, and a flood of bad keys or unknown
    models at most 40 small ``SELECT`` a second per event loop. None is made within a second of
    a failed one."""

    FAILED_CHECK_PAUSE_SECONDS = 1.0
    CHECK_SPACING_SECONDS = 0.025  # at most 40 checks a second per event loop
    CHECK_WAIT_SECONDS = 1.0  # how long a request waits for a check before it is refused

    def __init__(self, *, poll_seconds: float, redis_url: str) -> None:
        self._poll = poll_seconds
        self._redis_url = redis_url
        self._stop = threading.Event()
        self._loaded = threading.Event()
        self._snapshot: Snapshot | None = None
        self._check_lock = threading.Lock()
        self._checks_begun = 0
        self._failed_at = -math.inf
        self._checker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="config-check")
        self._turns = PerLoop(_CheckTurns)
        self._thread = threading.Thread(target=self._run, name="config-watcher", daemon=True)
        self._thread.start()

    def current(self) -> Snapshot:
        snapshot = self._snapshot
        if snapshot is None:
            self._loaded.wait(30)
            snapshot = self._snapshot
            if snapshot is None:
                raise RuntimeError("the gateway configuration could not be loaded")
        return snapshot

    async def catch_up(self, seen: Snapshot) -> Snapshot:
        """The snapshot after a revision check launched after this call (``seen`` is the one
        the caller could not use); a newer one at once if the watcher already has it."""
        if self._snapshot is not seen:
            return self.current()
        turn = self._turns.get()
        asked = turn.launched
        async with turn.lock:
            paused = time.monotonic() - self._failed_at < self.FAILED_CHECK_PAUSE_SECONDS
            if turn.launched == asked and not paused:
                wait = turn.last_launch + self.CHECK_SPACING_SECONDS - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)  # the callers asking meanwhile share this check
                turn.launched += 1
                turn.last_launch = time.monotonic()
                check = asyncio.get_running_loop().run_in_executor(self._checker, self._refresh)
                # A database that does not answer holds the check, not the request for long.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(check), self.CHECK_WAIT_SECONDS)
        return self.current()

    @property
    def revision_checks(self) -> int:
        """How many revision checks this watcher has begun (by its thread and for requests)."""
        return self._checks_begun

    def stop(self, *, join_seconds: float = 0.0) -> None:
        """Stop the watcher; the checker thread closes its database connection. The watcher
        thread ends at its next wake-up (waited for up to ``join_seconds``). Never raises: it
        runs at interpreter exit before the usage is flushed."""
        self._stop.set()
        with contextlib.suppress(RuntimeError):  # at exit, executors take no new work
            self._checker.submit(connections.close_all)
        self._checker.shutdown(wait=False)
        self._thread.join(join_seconds)

    def _refresh(self) -> None:
        with self._check_lock:
            self._checks_begun += 1
            close_old_connections()
            try:
                if self._snapshot is None or current_revision() != self._snapshot.revision:
                    self._snapshot = load_snapshot()
                    self._loaded.set()
            except DatabaseError as exc:
                self._failed_at = time.monotonic()
                logger.warning("configuration refresh failed, keeping the last snapshot: %s", exc)

    def _run(self) -> None:
        subscriber = None
        retry_subscribe_at = 0.0
        while not self._stop.is_set():
            if self._redis_url and subscriber is None and time.monotonic() >= retry_subscribe_at:
                subscriber = self._subscribe()  # before the load: no change can slip between
                retry_subscribe_at = time.monotonic() + 5.0
            self._refresh()
            if subscriber is None:
                self._stop.wait(self._poll)
                continue
            try:
                subscriber.get_message(ignore_subscribe_messages=True, timeout=self._poll)
            except redis.RedisError as exc:
                observe_redis_error("config_pubsub")
                logger.warning("configuration pub/sub lost, polling only: %s", exc)
                subscriber = None
                self._stop.wait(self._poll)
        connections.close_all()  # this thread's connection

    def _subscribe(self) -> redis.client.PubSub | None:
        try:
            client = redis.Redis.from_url(self._redis_url, socket_connect_timeout=1, health_check_interval=30)
            pubsub: redis.client.PubSub = client.pubsub()
            pubsub.subscribe(revision_channel())
            return pubsub
        except redis.RedisError as exc:
            observe_redis_error("config_pubsub")
            logger.warning("cannot subscribe to configuration changes, polling only: %s", exc)
            return None


class PerLoop(Generic[T]):
    """One object per event loop (an async client belongs to the loop that made it), built by
    ``build`` on first use in a loop; those of loops closed since are dropped then."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._items: dict[asyncio.AbstractEventLoop, T] = {}

    def get(self) -> T:
        loop = asyncio.get_running_loop()
        item = self._items.get(loop)
        if item is None:
            for stale in [other for other in self._items if other.is_closed()]:
                del self._items[stale]
            item = self._items[loop] = self._build()
        return item

    def items(self) -> list[T]:
        return list(self._items.values())

    def live(self) -> list[T]:
        return [item for loop, item in list(self._items.items()) if not loop.is_closed()]

    def close(self, aclose: Callable[[T], Coroutine[Any, Any, None]]) -> None:
        for loop, item in list(self._items.items()):
            # At interpreter exit the server's loop has stopped but is still open.
            if not loop.is_closed() and not loop.is_running():
                loop.run_until_complete(aclose(item))
        self._items.clear()


class Runtime:
    def __init__(self) -> None:
        self.watcher = SnapshotWatcher(
            poll_seconds=settings.GATEWAY_CONFIG_POLL_SECONDS, redis_url=settings.REDIS_URL
        )
        writer = UsageWriter(
            flush_seconds=settings.GATEWAY_USAGE_FLUSH_SECONDS,
            batch_size=settings.GATEWAY_USAGE_BATCH_SIZE,
            spool_path=settings.GATEWAY_USAGE_SPOOL_PATH,
        )
        self.usage = UsageSink(
            writer=writer,
            limiter=self.limiter,
            prices=lambda: self.watcher.current().prices,
            redis_prefix=settings.GATEWAY_REDIS_PREFIX,
            outbox=bool(settings.REDIS_URL),
        )
        self.drainer = (
            OutboxDrainer(
                redis_url=settings.REDIS_URL,
                redis_prefix=settings.GATEWAY_REDIS_PREFIX,
                batch_size=settings.GATEWAY_USAGE_BATCH_SIZE,
                claim_idle_ms=int(settings.GATEWAY_USAGE_CLAIM_IDLE_SECONDS * 1000),
                interval_seconds=settings.GATEWAY_USAGE_DRAIN_SECONDS,
            )
            if settings.REDIS_URL and not settings.CELERY_BROKER_URL
            else None
        )
        self.beat = (
            None
            if settings.CELERY_BROKER_URL
            else InProcessBeat(
                settings.CELERY_BEAT_SCHEDULE,
                delegated={"drain-usage-outbox": "usage-outbox thread"} if self.drainer else None,
            )
        )
        self._routers = PerLoop(self._build_router)
        self._background: set[asyncio.Task[None]] = set()
        self.alerts = AlertDispatcher()
        self._limiters = PerLoop(self._build_limiter)
        self._gates = PerLoop(self._build_gate)
        self._caches = PerLoop(self._build_cache)
        self._cache_local = LocalCache(
            max_entries=settings.GATEWAY_CACHE_MAX_ENTRIES, max_bytes=settings.GATEWAY_CACHE_MAX_BYTES
        )
        self._local_limiter = Limiter(
            LocalStore(baseline=self._recorded_spend),
            fail_open=True,
            on_alert=self.alerts.notify,
        )

    def admitted_unchecked(self) -> int:
        """Requests admitted without limits because Redis was unreachable (fail open)."""
        return sum(limiter.unenforced_total for limiter in self._limiters.items())

    def _recorded_spend(self, quota_id: int, period_key: str) -> int:
        return self.watcher.current().recorded_spend.get((quota_id, period_key), 0)

    def limiter(self) -> Limiter:
        """The limiter of the running event loop: on Redis when ``REDIS_URL`` is set (one client
        per loop, like the router), else the process's in-process one."""
        return self._limiters.get() if settings.REDIS_URL else self._local_limiter

    def _build_limiter(self) -> Limiter:
        """On Redis, each call bounded by ``GATEWAY_REDIS_TIMEOUT_SECONDS`` of the time the
        loop was responsive (its stalls are this process's, not Redis's), within a wall-time cap
        of ten times that (at least 5 s)."""
        timeout = settings.GATEWAY_REDIS_TIMEOUT_SECONDS
        cap = max(10 * timeout, 5.0)
        client = create_client(
            settings.REDIS_URL, timeout=None, max_connections=settings.GATEWAY_REDIS_MAX_CONNECTIONS
        )
        store = RedisStore(
            client,
            on_error=redis_error_hook("limiter"),
            timeout=timeout,
            cap=cap,
            stalled=self.gate().monitor.stalled,
        )
        return Limiter(
            store, fail_open=settings.GATEWAY_ON_REDIS_ERROR == "open", on_alert=self.alerts.notify
        )

    def gate(self) -> LoadGate:
        """The running event loop's admission gate (in-flight count and loop lag)."""
        return self._gates.get()

    def _build_gate(self) -> LoadGate:
        return LoadGate(
            max_in_flight=settings.GATEWAY_MAX_IN_FLIGHT, max_lag=settings.GATEWAY_MAX_LOOP_LAG_MS / 1000
        )

    def cache(self) -> ResponseCache:
        """The response cache of the running event loop: the process's L1 over Redis (a client
        of this loop, bounded by ``GATEWAY_REDIS_TIMEOUT_SECONDS``, no retries) when configured."""
        return self._caches.get()

    def _build_cache(self) -> ResponseCache:
        return ResponseCache(
            self._cache_local,
            client=request_path_redis() if settings.REDIS_URL else None,
            prefix=settings.GATEWAY_REDIS_PREFIX,
            timeout=settings.GATEWAY_REDIS_TIMEOUT_SECONDS,
        )

    def router(self) -> Router:
        """The router (and its HTTP client) of the running event loop; a process normally has
        exactly one loop, tests have one per test."""
        return self._routers.get()

    def _build_router(self) -> Router:
        client = create_http_client(
            max_connections=settings.GATEWAY_UPSTREAM_MAX_CONNECTIONS,
            timeout_seconds=settings.GATEWAY_UPSTREAM_TIMEOUT_SECONDS,
            connect_timeout=settings.GATEWAY_UPSTREAM_CONNECT_TIMEOUT_SECONDS,
            traced=settings.GATEWAY_TRACING,
        )
        router = Router(
            client=client,
            default_timeout=settings.GATEWAY_UPSTREAM_TIMEOUT_SECONDS,
            exploration=min(1.0, settings.GATEWAY_ROUTING_EXPLORATION),
            retry=RetryPolicy(
                retries=settings.GATEWAY_RETRIES,
                initial=settings.GATEWAY_RETRY_INITIAL_SECONDS,
                maximum=settings.GATEWAY_RETRY_MAX_SECONDS,
                multiplier=settings.GATEWAY_RETRY_MULTIPLIER,
                jitter=settings.GATEWAY_RETRY_JITTER,
            ),
            breakers=BreakerBoard(breaker_policy()),
        )
        if settings.REDIS_URL:
            self._start_routing_sync(router)
        return router

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in the background on the running loop (kept referenced until done)."""
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def routers(self) -> list[Router]:
        """This process's routers (one per event loop), for the admin's routing overview."""
        return self._routers.live()

    def _start_routing_sync(self, router: Router) -> None:
        """Share latency averages and breaker openings with the other instances, in the background."""
        client = request_path_redis()
        sync = RedisRoutingSync(
            latency=router.latency,
            breakers=router.breakers,
            client=client,
            prefix=settings.GATEWAY_REDIS_PREFIX,
            stats=router.stats,
            on_error=redis_error_hook("routing_sync"),
        )
        self.spawn(sync.run(settings.GATEWAY_ROUTING_SYNC_SECONDS))

    def close(self) -> None:
        """Close everything in order; a step that fails is logged and the others still run, so
        the queued usage is flushed whatever went wrong before it."""
        steps: list[Callable[[], None]] = [
            self.watcher.stop,
            functools.partial(self._routers.close, Router.aclose),
            functools.partial(self._limiters.close, Limiter.aclose),
            functools.partial(self._gates.close, _close_gate),
            functools.partial(self._caches.close, ResponseCache.aclose),  # pending L2 writes complete first
            self.alerts.close,
            self.usage.close,
        ]
        steps += [part.stop for part in (self.drainer, self.beat) if part is not None]
        for step in steps:
            try:
                step()
            except Exception:
                logger.exception("shutdown step failed; continuing")


async def _close_gate(gate: LoadGate) -> None:
    await gate.monitor.aclose()


def request_path_redis() -> aioredis.Redis:
    """A Redis client for the request path (limits, response cache, routing sync) of the
    running event loop: ``GATEWAY_REDIS_TIMEOUT_SECONDS`` per call, no retries, at most
    ``GATEWAY_REDIS_MAX_CONNECTIONS`` connections."""
    return create_client(
        settings.REDIS_URL,
        timeout=settings.GATEWAY_REDIS_TIMEOUT_SECONDS,
        max_connections=settings.GATEWAY_REDIS_MAX_CONNECTIONS,
    )


def breaker_policy() -> BreakerPolicy:
    """The circuit breakers' policy from the ``GATEWAY_BREAKER_*`` settings."""
    return BreakerPolicy(
        failure_threshold=settings.GATEWAY_BREAKER_FAILURES,
        success_threshold=settings.GATEWAY_BREAKER_SUCCESSES,
        open_seconds=settings.GATEWAY_BREAKER_OPEN_SECONDS,
    )


@functools.cache
def get_runtime() -> Runtime:
    runtime = Runtime()
    atexit.register(runtime.close)
    return runtime
