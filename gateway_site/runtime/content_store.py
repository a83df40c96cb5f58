"""Stores the content of requests of tenants that turned content logging on
(``Tenant.log_content``): the prompt and reply, redacted by the PII redactor, encrypted with the
provider-secret keys (Fernet, ``GATEWAY_SECRETS_KEYS``), one ``accounting.RequestContent`` row
each, kept ``GATEWAY_CONTENT_RETENTION_DAYS``.

Like the usage writer: the request path only puts an item on a bounded queue (a request of a
tenant without logging never reaches here); a background thread of the process reads the
content, redacts, encrypts and bulk-inserts batches, off the event loop. Content is best effort:
a full queue or a database error drops it (logged, and counted in the log line), never the
request nor its usage record."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import queue
import threading
from dataclasses import dataclass

import orjson
from django.db import DatabaseError, close_old_connections, connection

from accounting.models import RequestContent
from gateway_site.observability.access_log import ContentSource, redacted_content
from providers.secrets import encrypt_secret

logger = logging.getLogger(__name__)

QUEUE_SIZE = 10_000
BATCH = 200
IDLE_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class _Item:
    request_id: str
    created_at: float
    tenant_id: int
    content: ContentSource


class ContentStore:
    def __init__(self, *, queue_size: int = QUEUE_SIZE) -> None:
        self._queue: queue.Queue[_Item] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()

    def submit(self, *, request_id: str, created_at: float, tenant_id: int, content: ContentSource) -> None:
        """Queue a request's content (non-blocking); the thread starts on the first one."""
        try:
            self._queue.put_nowait(_Item(request_id, created_at, tenant_id, content))
        except queue.Full:
            logger.warning("request content of %s dropped: the content queue is full", request_id)
            return
        self._idle.clear()
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="content-store", daemon=True)
                    self._thread.start()

    def wait_idle(self, timeout: float) -> bool:
        """Whether everything queued so far was written (or dropped) within ``timeout`` seconds."""
        return self._queue.empty() and self._idle.wait(timeout)

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                self._idle.set()
                continue
            batch = [first]
            while len(batch) < BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._write(batch)
            if self._queue.empty():
                self._idle.set()

    def _write(self, batch: list[_Item]) -> None:
        rows = []
        for item in batch:
            try:
                redacted = redacted_content(item.content)
                rows.append(
                    RequestContent(
                        request_id=item.request_id,
                        created_at=dt.datetime.fromtimestamp(item.created_at, tz=dt.UTC),
                        tenant_id=item.tenant_id,
                        prompt=encrypt_secret(orjson.dumps(redacted["prompt"]).decode()),
                        reply=encrypt_secret(str(redacted["completion"])),
                    )
                )
            except Exception:
                logger.exception("request content of %s not stored", item.request_id)
        if not rows:
            return
        close_old_connections()
        try:
            RequestContent.objects.bulk_create(rows, ignore_conflicts=True)
        except DatabaseError as exc:
            logger.warning("request content of %d request(s) dropped: %s", len(rows), exc)
        finally:
            connection.close()  # this thread's own; a batch is rare next to requests


@functools.cache
def content_store() -> ContentStore:
    """The process's content store."""
    return ContentStore()
