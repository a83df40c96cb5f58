"""Process-wide objects of a gateway process, built once by ``get_runtime()`` and closed at
exit: the control-plane snapshot (keys and models) kept fresh by a watcher thread, the upstream
HTTP client and router (one per event loop), the limiter (its Redis client one per event loop;
in process without ``REDIS_URL``), the response cache (its L1 process-wide, its Redis client
one per event loop; L1 only without ``REDIS_URL``), the quota alert dispatcher, the usage sink (writer, Redis
outbox) and, with Redis but no Celery broker, the outbox drainer thread."""

from __future__ import annotations

import asyncio
import atexit
import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import redis.asyncio as aioredis
from channels.layers import get_channel_layer
from django.conf import settings

from accounting.recorder import UsageWriter
from gateway_site.caches import shared_layer
from gateway_site.observability.metrics import redis_error_hook
from gateway_site.runtime.jwks import TokenVerifier
from gateway_site.runtime.live_tail import LiveTail
from gateway_site.runtime.outbox_drainer import OutboxDrainer
from gateway_site.runtime.overload import LoadGate
from gateway_site.runtime.per_loop import PerLoop
from gateway_site.runtime.periodic import InProcessBeat
from gateway_site.runtime.snapshot import SnapshotWatcher
from gateway_site.runtime.usage_sink import UsageSink
from providers.http import create_http_client
from quotas.alerts import AlertDispatcher
from quotas.limiter import Limiter
from quotas.live import use_local_store
from quotas.stores.local import LocalStore
from quotas.stores.shared import RedisStore, create_client
from routing.breaker import BreakerBoard, BreakerPolicy
from routing.cache import LocalCache, ResponseCache
from routing.retry import RetryPolicy
from routing.router import Router
from routing.sync import RedisRoutingSync

logger = logging.getLogger(__name__)


class Runtime:
    def __init__(self) -> None:
        self.watcher = SnapshotWatcher(
            poll_seconds=settings.GATEWAY_CONFIG_POLL_SECONDS,
            redis_url=settings.REDIS_URL,
            files_check_seconds=settings.GATEWAY_SECRET_FILES_CHECK_SECONDS,
        )
        writer = UsageWriter(
            flush_seconds=settings.GATEWAY_USAGE_FLUSH_SECONDS,
            batch_size=settings.GATEWAY_USAGE_BATCH_SIZE,
            spool_path=settings.GATEWAY_USAGE_SPOOL_PATH,
        )
        self.tail = LiveTail(
            redis_url=settings.REDIS_URL,
            shared=shared_layer(settings.REDIS_URL),
            prefix=settings.GATEWAY_REDIS_PREFIX,
            send=_group_send,
        )
        self.usage = UsageSink(
            writer=writer,
            tail=self.tail,
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
        self._tokens = PerLoop(self._build_verifier)
        self._cache_local = LocalCache(
            max_entries=settings.GATEWAY_CACHE_MAX_ENTRIES, max_bytes=settings.GATEWAY_CACHE_MAX_BYTES
        )
        local_store = LocalStore(baseline=self._recorded_spend)
        self._local_limiter = Limiter(local_store, fail_open=True, on_alert=self.alerts.notify)
        use_local_store(local_store)  # the admin's quota lists read these counters

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

    def tokens(self) -> TokenVerifier:
        """The bearer JWT verifier (issuers' key sets, verified tokens) of the running event loop."""
        return self._tokens.get()

    def _build_verifier(self) -> TokenVerifier:
        return TokenVerifier(
            leeway=settings.GATEWAY_JWT_LEEWAY_SECONDS,
            refresh_interval=settings.GATEWAY_JWKS_REFRESH_SECONDS,
            max_age=settings.GATEWAY_JWKS_MAX_AGE_SECONDS,
            timeout=settings.GATEWAY_JWKS_TIMEOUT_SECONDS,
            max_tokens=settings.GATEWAY_JWT_CACHE_SIZE,
        )

    def router(self) -> Router:
        """The router (and its HTTP client) of the running event loop; a process normally has
        exactly one loop, tests have one per test."""
        return self._routers.get()

    def _build_router(self) -> Router:
        pool = functools.partial(
            create_http_client,
            max_connections=settings.GATEWAY_UPSTREAM_MAX_CONNECTIONS,
            timeout_seconds=settings.GATEWAY_UPSTREAM_TIMEOUT_SECONDS,
            connect_timeout=settings.GATEWAY_UPSTREAM_CONNECT_TIMEOUT_SECONDS,
            traced=settings.GATEWAY_TRACING,
        )
        client = pool()
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
            tls_client=lambda tls: pool(tls=tls),
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
            functools.partial(self._tokens.close, TokenVerifier.aclose),
            self.alerts.close,
            self.usage.close,
            self.tail.stop,
        ]
        steps += [part.stop for part in (self.drainer, self.beat) if part is not None]
        for step in steps:
            try:
                step()
            except Exception:
                logger.exception("shutdown step failed; continuing")


async def _close_gate(gate: LoadGate) -> None:
    await gate.monitor.aclose()


async def _group_send(group: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is not None:
        await layer.group_send(group, message)


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
