"""Without a Celery broker, each gateway process drains the usage outbox stream into
``UsageRecord`` itself, in a ``usage-outbox`` thread: one consumer each of the same consumer
group, so several gateways share the work and claim a dead one's entries."""

from __future__ import annotations

import logging
import threading

import redis
from django.db import DatabaseError, close_old_connections

from accounting.outbox import consumer_name, drain, outbox_stream
from gateway_site.observability.metrics import observe_redis_error
from quotas.stores.redis_target import sync_client

logger = logging.getLogger(__name__)


class OutboxDrainer:
    """Drains the outbox stream into ``UsageRecord`` from a background thread (no Celery): every
    ``interval_seconds``, everything pending, in batches, as the Celery task does. (Reading as
    each event arrives made a transaction, and with SQLite an fsync, per one or two records:
    it doubled the gateway's CPU per request.)"""

    def __init__(
        self,
        *,
        redis_url: str,
        redis_prefix: str,
        batch_size: int,
        claim_idle_ms: int,
        interval_seconds: float,
    ) -> None:
        self._client = sync_client(redis_url, timeout=5, connect_timeout=2)
        self._stream = outbox_stream(redis_prefix)
        self._consumer = consumer_name("gateway")
        self._batch_size = batch_size
        self._claim_idle_ms = claim_idle_ms
        self._interval = interval_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="usage-outbox", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                drain(
                    self._client,
                    stream=self._stream,
                    consumer=self._consumer,
                    batch_size=self._batch_size,
                    claim_idle_ms=self._claim_idle_ms,
                )
            except (redis.RedisError, DatabaseError, OSError) as exc:
                if not isinstance(exc, DatabaseError):
                    observe_redis_error("usage_outbox")
                logger.warning("usage outbox not drained, retrying: %s", exc)
                self._stop.wait(1.0)
            finally:
                close_old_connections()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        self._client.close()
