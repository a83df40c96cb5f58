"""Where a finished request's usage event goes (``UsageSink``): its settlement and its record.

* Without ``REDIS_URL``: settle the admission in process; the event goes to the usage writer
  (in-process batch flusher, spool file when the database is down).
* With ``REDIS_URL``: the event is serialized here and appended to the outbox stream by the
  same Redis round trip that settles the limits (``quotas.stores.shared``). If Redis cannot take
  it, the usage writer records it (straight to the database, else the spool file).

The stream is drained by Celery (``accounting.tasks.drain_usage_outbox``, every
``GATEWAY_USAGE_DRAIN_SECONDS`` from beat) when ``CELERY_BROKER_URL`` is set; otherwise by every
gateway process itself (``gateway_site.runtime.outbox_drainer``)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from accounting.outbox import outbox_stream
from accounting.pricing import PriceTable
from accounting.recorder import UsageEvent, UsageWriter, encode_event
from gateway_site.runtime.live_tail import LiveTail
from quotas.limiter import Admission, Limiter
from quotas.stores.base import Outbox

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
        tail: LiveTail | None = None,
    ) -> None:
        self.writer = writer
        self.tail = tail if tail is not None else LiveTail.inert()
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
        if self.tail.watched:  # the only cost to a request while nobody watches the live tail
            self.tail.offer(event)

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
