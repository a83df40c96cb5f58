"""The configuration snapshot of a gateway process (keys, models, prices, and without Redis
the quotas' recorded spend), loaded from the database and kept fresh by ``SnapshotWatcher``:
polled, reloaded at once on a Redis pub/sub message, and checked again for a request the
snapshot cannot serve (read-your-writes)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import redis
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections, transaction

from accounting.prices import load_price_table
from accounting.pricing import PriceTable
from accounting.spend import recorded_spend
from gateway_site.observability.metrics import observe_redis_error
from gateway_site.runtime.per_loop import PerLoop
from gateway_site.runtime.settings_files import SettingsSecretFiles
from providers.catalog import load_catalog
from providers.files import stamps
from providers.types import Catalog
from quotas.authentication.registry import KeyRegistry, load_registry
from quotas.revision import current_revision, revision_channel
from quotas.stores.redis_target import sync_client

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ConfigSnapshot:
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


@contextlib.contextmanager
def one_moment() -> Iterator[None]:
    """The block's reads see the database as of one moment: one read-only transaction, on
    PostgreSQL at REPEATABLE READ (its default, READ COMMITTED, lets each statement see what
    committed since the last one; SQLite's read transaction is one snapshot already). Inside a
    transaction already begun the reads stay part of it."""
    connection = connections["default"]
    if connection.in_atomic_block:
        yield
        return
    with transaction.atomic(using="default"):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


def load_snapshot() -> ConfigSnapshot:
    """Keys, catalog, prices and the revision they are at, as of one moment. (Read table by
    table, a change committed during the load mixed two configurations under the older revision
    until the next reload: a model added with a hard quota for its tenant could be served by a
    snapshot that had the model but not the quota.)"""
    with one_moment():
        return ConfigSnapshot(
            revision=current_revision(),
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

    def __init__(self, *, poll_seconds: float, redis_url: str, files_check_seconds: float = 5.0) -> None:
        self._poll = poll_seconds
        self._files_check = files_check_seconds
        self._files_checked_at = time.monotonic()
        self._settings_files = SettingsSecretFiles()
        self._redis_url = redis_url
        self._stop = threading.Event()
        self._loaded = threading.Event()
        self._snapshot: ConfigSnapshot | None = None
        self._check_lock = threading.Lock()
        self._checks_begun = 0
        self._failed_at = -math.inf
        self._checker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="config-check")
        self._turns = PerLoop(_CheckTurns)
        self._thread = threading.Thread(target=self._run, name="config-watcher", daemon=True)
        self._thread.start()

    def current(self) -> ConfigSnapshot:
        snapshot = self._snapshot
        if snapshot is None:
            self._loaded.wait(30)
            snapshot = self._snapshot
            if snapshot is None:
                raise RuntimeError("the gateway configuration could not be loaded")
        return snapshot

    async def catch_up(self, seen: ConfigSnapshot) -> ConfigSnapshot:
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
                if (
                    self._snapshot is None
                    or current_revision() != self._snapshot.revision
                    or self._files_changed(self._snapshot)
                ):
                    self._snapshot = load_snapshot()
                    self._loaded.set()
            except DatabaseError as exc:
                self._failed_at = time.monotonic()
                logger.warning("configuration refresh failed, keeping the last snapshot: %s", exc)

    def _files_changed(self, snapshot: ConfigSnapshot) -> bool:
        """Whether a file the catalog read a secret or certificate from changed (rotated), or
        the settings' secret keys did (``settings_files``; stored secrets are then decrypted
        again), looked at most every ``files_check_seconds``, in this thread (never on an event
        loop)."""
        if time.monotonic() - self._files_checked_at < self._files_check:
            return False
        self._files_checked_at = time.monotonic()
        keys_changed = self._settings_files.check()
        files = snapshot.catalog.secret_files
        changed = bool(files) and stamps(set(files)) != files
        if changed:
            logger.info("a provider secret or certificate file changed; reloading the catalog")
        return changed or keys_changed

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
            client = sync_client(self._redis_url, timeout=None, connect_timeout=1, health_check_interval=30)
            pubsub: redis.client.PubSub = client.pubsub()
            pubsub.subscribe(revision_channel())
            return pubsub
        except redis.RedisError as exc:
            observe_redis_error("config_pubsub")
            logger.warning("cannot subscribe to configuration changes, polling only: %s", exc)
            return None
