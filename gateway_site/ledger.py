"""Where a finished request's usage event goes (``UsageSink``), and the in-process drainer of the
outbox stream for deployments with Redis but no Celery broker.

* Without ``REDIS_URL``: settle the admission in process; the event goes to the usage writer
  (in-process batch flusher, spool file when the database is down).
* With ``REDIS_URL``: the event is serialized here and appended to the outbox stream by the
  same Redis round trip that settles the limits (``quotas.store_redis``). If Redis cannot take
  it, the usage writer records it (straight to the database, else the spool file).

The stream is drained by Celery (``accounting.tasks.drain_usage_outbox``, every
``GATEWAY_USAGE_DRAIN_SECONDS`` from beat) when ``CELERY_BROKER_URL`` is set; otherwise every
gateway process drains it itself in a ``usage-outbox`` thread (one consumer each in the same
consumer group, so several gateways share the work and claim a dead one's entries), and the other
periodic tasks run in an ``in-process-beat`` thread (``gateway_site.periodic``)."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable

import redis
from django.db import DatabaseError, close_old_connections

from accounting.ledger import consumer_name, drain, outbox_stream
from accounting.pricing import PriceTable
from accounting.recorder import UsageEvent, UsageWriter, encode_event
from gateway_site.metrics import observe_redis_error
from quotas.admission import Admission, Limiter, Outbox

logger = logging.getLogger(__name__)


class UsageSink:
    def __init__(
        self,
        *,
        writer: UsageWriter,
        limiter: Callable[[], Limiter],
        prices: Callable[[], PriceTable],
        redis_prefix: str,
        outbox: bool,
    ) -> None:
        self.writer = writer
        self._limiter = limiter
        self._prices = prices
        self._stream = outbox_stream(redis_prefix)
        self._outbox = outbox

    def price_table(self) -> PriceTable:
        """The price versions of the current configuration snapshot."""
        return self._prices()

    def emit(self, event: UsageEvent, *, admission: Admission | None, tokens: int, cost_micro: int) -> None:
        """Hot path, once per admitted request: never blocks, never raises. Should settling
        fail unexpectedly, the event is recorded directly and the admission settled on its own
        (if it was not already); its reservations otherwise end with their lease."""
        try:
            self._emit(event, admission=admission, tokens=tokens, cost_micro=cost_micro)
        except Exception:
            logger.exception("usage event %s: settlement failed, recording it directly", event.request_id)
            self.writer.record(event)
            if admission is not None and not admission.settled:
                admission.settle(tokens=tokens, cost_micro=cost_micro)

    def _emit(self, event: UsageEvent, *, admission: Admission | None, tokens: int, cost_micro: int) -> None:
        if not self._outbox:
            if admission is not None:
                admission.settle(tokens=tokens, cost_micro=cost_micro)
            self.writer.record(event)
            return
        try:
            limiter = self._limiter()
        except RuntimeError:  # no running event loop: nothing can reach Redis from here
            self.writer.record(event)
            return
        try:
            payload = encode_event(event)
        except (TypeError, ValueError):  # the record is still written; the settlement goes alone
            logger.exception("usage event %s not encodable for the outbox", event.request_id)
            limiter.settle_soon(admission, tokens=tokens, cost_micro=cost_micro)
            self.writer.record(event)
            return
        outbox = Outbox(
            stream=self._stream, payload=payload, on_failure=functools.partial(self.writer.record, event)
        )
        limiter.settle_soon(admission, tokens=tokens, cost_micro=cost_micro, outbox=outbox)

    def close(self) -> None:
        self.writer.close()


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
        self._client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=2)
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
