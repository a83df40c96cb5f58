"""The usage ledger's outbox with Redis: gateways append each request's ``UsageEvent`` to one
Redis stream (in the same round trip that settles its limits, see ``quotas.stores.shared``), and
consumers of one consumer group drain it into ``UsageRecord``.

Exactly once into Postgres: a batch is inserted (a request id already stored is ignored), then
acknowledged and deleted from the stream. A consumer that dies between reading and
acknowledging leaves its entries pending; any other consumer claims them (``XAUTOCLAIM``) once
they have been idle ``claim_idle_ms``, and inserting them again is harmless. A consumer whose
write failed (the database away, its connection dropped) reads its own pending entries first at
its next drain, so they are stored as soon as the database answers again."""

from __future__ import annotations

import logging
import os
import secrets
import socket
from dataclasses import dataclass
from typing import Any

import redis
from redis.exceptions import ResponseError

from accounting.recorder import UsageEvent, decode_event, mark_keys_used, sliced, write_events

logger = logging.getLogger(__name__)

GROUP = "usage-ledger"


def outbox_stream(prefix: str) -> str:
    """The stream's key for a deployment's Redis prefix (``GATEWAY_REDIS_PREFIX``)."""
    return f"{prefix}usage:outbox"


def consumer_name(role: str) -> str:
    """A consumer name unique to this process (a restarted process is a new consumer)."""
    return f"{role}-{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def ensure_group(client: redis.Redis, stream: str) -> None:
    try:
        client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


@dataclass(frozen=True, slots=True)
class Batch:
    ids: list[bytes]
    events: list[UsageEvent]
    claimed: int  # entries taken over from another (presumably dead) consumer
    own: bool = False  # this consumer's own entries, read before and not stored


def _decode_entries(entries: list[tuple[bytes, dict[bytes, bytes]]]) -> tuple[list[bytes], list[UsageEvent]]:
    ids, events = [], []
    for entry_id, fields in sliced(entries):
        ids.append(entry_id)
        try:
            events.append(decode_event(fields[b"e"]))
        except (KeyError, ValueError, TypeError, ArithmeticError) as exc:
            # Acknowledged with the batch: a malformed entry would otherwise block nothing but
            # come back for ever.
            logger.error("usage outbox entry %r dropped, not a usage event: %s", entry_id, exc)
    return ids, events


def next_batch(
    client: redis.Redis,
    *,
    stream: str,
    consumer: str,
    batch_size: int,
    claim_idle_ms: int,
    own_pending: bool = False,
) -> Batch:
    """Entries idle too long in a dead consumer first, else new ones (no waiting for them).
    ``own_pending``: this consumer's own unacknowledged entries before all (a batch whose
    write failed, retried at once rather than after ``claim_idle_ms``)."""
    if own_pending:
        mine: Any = client.xreadgroup(GROUP, consumer, {stream: "0"}, count=batch_size)
        entries = [entry for entry in (mine[0][1] if mine else []) if entry[1]]
        if entries:
            ids, events = _decode_entries(entries)
            return Batch(ids=ids, events=events, claimed=0, own=True)
    reply: Any = client.xautoclaim(
        stream, GROUP, consumer, min_idle_time=claim_idle_ms, start_id="0-0", count=batch_size
    )
    claimed = [entry for entry in reply[1] if entry[1] is not None]
    if claimed:
        ids, events = _decode_entries(claimed)
        return Batch(ids=ids, events=events, claimed=len(ids))
    read: Any = client.xreadgroup(GROUP, consumer, {stream: ">"}, count=batch_size)
    entries = read[0][1] if read else []  # RESP2: [[stream, [(id, fields), ...]]]
    ids, events = _decode_entries(entries)
    return Batch(ids=ids, events=events, claimed=0)


def store_batch(client: redis.Redis, *, stream: str, batch: Batch) -> None:
    """Insert (duplicates ignored), then acknowledge and delete. A database error propagates
    with the entries left pending, to be claimed again."""
    if batch.events:
        write_events(batch.events)
    if batch.ids:
        pipe = client.pipeline(transaction=True)
        pipe.xack(stream, GROUP, *batch.ids)
        pipe.xdel(stream, *batch.ids)
        pipe.execute()
    if batch.events:
        mark_keys_used(batch.events)


def drain(
    client: redis.Redis,
    *,
    stream: str,
    consumer: str,
    batch_size: int,
    claim_idle_ms: int,
    max_batches: int = 1_000_000,
) -> int:
    """Drain what the stream holds for this consumer when the drain begins, batch after batch
    (at most ``max_batches``); returns how many entries were stored. A batch of new entries that
    is not full ends it: what arrives while it is stored waits for the next drain. (Reading on
    until the stream was empty made a steady trickle of requests a transaction, and with SQLite
    an fsync, per one or two events: the drain never rested.)"""
    ensure_group(client, stream)
    stored = 0
    own_pending = True  # what an earlier drain read and could not store, first
    for _ in range(max_batches):
        batch = next_batch(
            client,
            stream=stream,
            consumer=consumer,
            batch_size=batch_size,
            claim_idle_ms=claim_idle_ms,
            own_pending=own_pending,
        )
        own_pending = batch.own
        if not batch.ids:
            break
        store_batch(client, stream=stream, batch=batch)
        stored += len(batch.ids)
        if batch.claimed:
            logger.info("claimed %d usage event(s) of a dead consumer", batch.claimed)
        elif not batch.own and len(batch.ids) < batch_size:
            break
    return stored


def forget_idle_consumers(client: redis.Redis, *, stream: str, idle_ms: int, keep: str = "") -> list[str]:
    """Remove from the group the consumers idle for ``idle_ms`` with nothing pending (every
    restarted process is a new consumer, so the group would otherwise grow forever); one with
    pending entries stays until another consumer claimed them. Returns the names removed."""
    try:
        consumers: Any = client.xinfo_consumers(stream, GROUP)
    except ResponseError:  # no stream or no group yet
        return []
    removed = []
    for consumer in consumers:
        name = consumer["name"].decode() if isinstance(consumer["name"], bytes) else consumer["name"]
        if name != keep and consumer["pending"] == 0 and consumer["idle"] >= idle_ms:
            client.xgroup_delconsumer(stream, GROUP, name)
            removed.append(name)
    return removed


def pending_count(client: redis.Redis, stream: str) -> int:
    """Entries delivered to some consumer and not yet acknowledged."""
    try:
        info = client.xpending(stream, GROUP)
    except ResponseError:
        return 0
    return int(info["pending"])
