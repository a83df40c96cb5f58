"""The usage writer: the hot path hands it a ``UsageEvent`` (a non-blocking queue put) and a
background thread bulk-inserts batches into ``UsageRecord``.

Exactly once: ``request_id`` is unique (with ``created_at``, which every copy of an event
shares: ``accounting.partitions``) and inserts ignore a duplicate. Nothing is lost on a
clean stop (``close`` drains the queue) nor while the database is down (a failed batch is
appended to a local spool file, replayed before the next batch once the database answers, or
within ``SPOOL_RETRY_SECONDS`` when no batch comes). With ``REDIS_URL`` the writer is the fallback
of the Redis outbox (``accounting.outbox``): it gets only the events Redis could not take."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

import orjson
from django.db import (
    DatabaseError,
    DataError,
    IntegrityError,
    close_old_connections,
    connections,
    router,
    transaction,
)
from django.db.models import NOT_PROVIDED, Field

from accounting.models import UsageRecord
from quotas.services import keys_mark_used

logger = logging.getLogger(__name__)
T = TypeVar("T")

SPOOL_RETRY_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class UsageEvent:
    request_id: str
    client_request_id: str
    created_at: float
    tenant_id: int
    tenant_name: str
    key_id: int
    key_prefix: str
    model: str
    status: int
    latency_ms: float
    endpoint: str = "chat.completions"
    deployment_id: int | None = None
    provider: str = ""
    upstream_model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_tokens: int = 0
    usage_estimated: bool = False
    cost_usd: Decimal = Decimal("0")
    price_version_id: int | None = None
    cache_hit: bool = False
    cost_saved_usd: Decimal = Decimal("0")
    error_type: str = ""
    streamed: bool = False
    client_disconnected: bool = False
    upstream_latency_ms: float = 0.0
    ttft_ms: float | None = None
    subject: str | None = None  # a bearer token's subject (key_id 0: no key)
    attempts: int = 1
    fell_back: bool = False


_EVENT_FIELDS = tuple(f.name for f in dataclasses.fields(UsageEvent))


# Rows converted between two yields of the interpreter lock while a batch is prepared.
_ROWS_PER_SLICE = 8


def sliced(items: list[T]) -> Iterator[T]:
    """``items``, letting other threads run every ``_ROWS_PER_SLICE``: a batch's conversion
    is pure Python (tens of microseconds a row) done in a gateway process's background thread,
    and held for a whole batch of hundreds it kept the event loop off the interpreter lock for
    the switch interval (5 ms) at a time: the requests' p99."""
    for index, item in enumerate(items):
        if index and not index % _ROWS_PER_SLICE:
            time.sleep(0)  # releases the lock; a waiting thread takes it
        yield item


def _to_record(event: UsageEvent) -> UsageRecord:
    fields = {name: getattr(event, name) for name in _EVENT_FIELDS}
    fields["created_at"] = dt.datetime.fromtimestamp(event.created_at, tz=dt.UTC)
    fields["key_id"] = event.key_id or None  # 0: a request authenticated by a token
    return UsageRecord(**fields)


def encode_event(event: UsageEvent) -> bytes:
    """The event's JSON (spool line, outbox entry), read back by ``decode_event``. orjson writes
    the dataclass itself (a tenth of ``dataclasses.asdict``'s cost); amounts are strings."""
    return orjson.dumps(event, default=str)


def decode_event(payload: bytes) -> UsageEvent:
    """A usage event from its JSON (spool line, outbox entry); fields unknown to this version (a
    newer gateway's) are dropped. Raises ValueError, TypeError or ArithmeticError if it is none."""
    raw = orjson.loads(payload)
    if not isinstance(raw, dict):
        raise TypeError(f"a usage event is a JSON object, not {type(raw).__name__}")
    fields = {name: value for name, value in raw.items() if name in _EVENT_FIELDS}
    fields["cost_usd"] = Decimal(str(fields.get("cost_usd", "0")))
    fields["cost_saved_usd"] = Decimal(str(fields.get("cost_saved_usd", "0")))
    return UsageEvent(**fields)


def mark_keys_used(events: list[UsageEvent]) -> None:
    """Keys' ``last_used_at`` from stored events, one UPDATE (best effort: it is informational)."""
    latest: dict[int, float] = {}
    for event in (e for e in events if e.key_id):
        latest[event.key_id] = max(event.created_at, latest.get(event.key_id, event.created_at))
    try:
        keys_mark_used(
            {key_id: dt.datetime.fromtimestamp(moment, tz=dt.UTC) for key_id, moment in latest.items()}
        )
    except DatabaseError as exc:
        logger.warning("last_used_at of %d key(s) not updated: %s", len(latest), exc)


def write_events(events: list[UsageEvent]) -> None:
    """Insert, ignoring request ids already stored. A row whose tenant or key was deleted
    since the request is kept with those links cleared (names and prefixes stay on the row).
    An event the database refuses on its own (a token count out of the column's range from an
    upstream's usage report) is logged whole at ERROR and skipped: kept, it would fail every
    later batch and stop the ledger. A database that does not answer raises ``DatabaseError``."""
    records = [_to_record(e) for e in sliced(events)]
    try:
        _insert(records)
        return
    except (IntegrityError, DataError):
        pass
    for event, record in zip(events, records, strict=True):
        if not _insert_one(record):
            logger.error(
                "usage event refused by the database, not recorded: %s", encode_event(event).decode()
            )


def _insert(records: list[UsageRecord]) -> None:
    """One statement, ``executemany``: the ORM's ``bulk_create`` assembled the SQL of every row
    field by field, which cost the draining process more than the request did. Columns the
    database fills itself (``db_default``, such as ``ingested_at``) are left out."""
    connection = connections[router.db_for_write(UsageRecord)]
    fields = _inserted_fields()
    rows = [
        tuple(field.get_db_prep_save(field.pre_save(record, True), connection) for field in fields)
        for record in sliced(records)
    ]
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.executemany(_insert_statement(connection.ops.quote_name, fields), rows)


def _inserted_fields() -> list[Field[object, object]]:
    return [
        field
        for field in UsageRecord._meta.concrete_fields
        # a database default (ingested_at) is the database's to fill, unless the event carries
        # the value (attempts, fell_back: defaults only for rows of an older gateway)
        if not field.primary_key and (field.db_default is NOT_PROVIDED or field.name in _EVENT_FIELDS)
    ]


def _insert_statement(quote: Callable[[str], str], fields: list[Field[object, object]]) -> str:
    """Only field and table names from the model, quoted; every value is a parameter."""
    columns = ", ".join(quote(str(field.column)) for field in fields)
    values = ", ".join(["%s"] * len(fields))
    table, unique = quote(UsageRecord._meta.db_table), f"{quote('request_id')}, {quote('created_at')}"
    return f"INSERT INTO {table} ({columns}) VALUES ({values}) ON CONFLICT ({unique}) DO NOTHING"  # noqa: S608


def _insert_one(record: UsageRecord) -> bool:
    """False: the row is refused even without its tenant and key links."""
    try:
        _insert([record])
        return True
    except DataError:
        return False
    except IntegrityError:
        record.tenant_id, record.key_id = None, None
    try:
        _insert([record])
        return True
    except (IntegrityError, DataError):
        return False


class UsageWriter:
    def __init__(self, *, flush_seconds: float, batch_size: int, spool_path: Path) -> None:
        self._queue: queue.SimpleQueue[UsageEvent | None] = queue.SimpleQueue()
        self._flush_seconds = flush_seconds
        self._batch_size = batch_size
        self._spool = spool_path
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="usage-writer", daemon=True)
        self._thread.start()

    def record(self, event: UsageEvent) -> None:
        """Hot path: never blocks, never raises."""
        self._queue.put_nowait(event)

    def queued(self) -> int:
        """Events waiting to be written (approximate, for metrics)."""
        return self._queue.qsize()

    def flush(self) -> None:
        """Write everything queued so far (blocking); for shutdown and tests."""
        batch: list[UsageEvent] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                batch.append(item)
        self._write(batch)

    def close(self, timeout: float = 15.0) -> None:
        self._queue.put_nowait(None)
        self._thread.join(timeout)
        self.flush()

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            connections.close_all()  # this thread's; they would outlive it otherwise

    def _loop(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=SPOOL_RETRY_SECONDS)
            except queue.Empty:
                if self._spool.exists():
                    self._write([])  # replay the spool once the database is back, even when idle
                continue
            if first is None:
                return
            batch = [first]
            deadline = time.monotonic() + self._flush_seconds
            stop = False
            while len(batch) < self._batch_size:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    item = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._write(batch)
            if stop:
                return

    @contextlib.contextmanager
    def _spool_locked(self) -> Iterator[None]:
        """The spool is shared by every process of ``serve --workers N``: an exclusive lock on
        ``<spool>.lock`` keeps one's append out of another's replay (read, insert, unlink), which
        would otherwise delete the appended events unread."""
        self._spool.parent.mkdir(parents=True, exist_ok=True)
        with self._spool.with_name(self._spool.name + ".lock").open("a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _write(self, batch: list[UsageEvent]) -> None:
        with self._lock:
            close_old_connections()
            try:
                if self._spool.exists():
                    with self._spool_locked():
                        self._replay_spool()
                if batch:
                    write_events(batch)
            except DatabaseError as exc:
                if batch:
                    logger.error("usage batch of %d spooled, database unavailable: %s", len(batch), exc)
                    with self._spool_locked():
                        self._append_spool(batch)
                return
            finally:
                close_old_connections()
            try:
                mark_keys_used(batch)
            finally:
                close_old_connections()

    def _append_spool(self, batch: list[UsageEvent]) -> None:
        self._spool.parent.mkdir(parents=True, exist_ok=True)
        with self._spool.open("a+b") as handle:
            # A process killed mid-append leaves a line without its end: the next event must not
            # be glued to it (it would be lost with it).
            size = handle.seek(0, os.SEEK_END)
            if size:
                handle.seek(size - 1)
                if handle.read(1) != b"\n":
                    handle.write(b"\n")
            for event in batch:
                handle.write(encode_event(event) + b"\n")

    def _replay_spool(self) -> None:
        """Write the spooled events; lines that are not usage events (cut short by a crash, or
        from another version) are moved to ``<spool>.rejected`` rather than block the others."""
        if not self._spool.exists() or self._spool.stat().st_size == 0:
            return
        events: list[UsageEvent] = []
        rejected: list[bytes] = []
        for line in self._spool.read_bytes().splitlines():
            if line.strip():
                try:
                    events.append(decode_event(line))
                except (ValueError, TypeError, ArithmeticError):
                    rejected.append(line)
        write_events(events)
        if rejected:
            rejects = self._spool.with_name(self._spool.name + ".rejected")
            with rejects.open("ab") as handle:
                handle.write(b"".join(line + b"\n" for line in rejected))
            logger.error("%d spooled line(s) are not usage events, moved to %s", len(rejected), rejects)
        self._spool.unlink()
        logger.info("replayed %d spooled usage events", len(events))
