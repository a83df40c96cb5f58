"""What the chaos run's own stores hold: the usage records in its PostgreSQL, and in its Redis
the cost quota's settled spend and reservations (the ``r:<request id>`` fields of the quota
hash and the leases set that times them), the parallel slots, the rate counters of a window,
and the usage outbox stream. The Redis is the run's alone, so every key of it is read."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg
import redis

RECORDS_SQL = (
    "SELECT request_id, client_request_id, status, streamed, prompt_tokens, completion_tokens, "
    "CEIL(cost_usd * 1000000)::bigint, error_type, usage_estimated, client_disconnected "
    "FROM accounting_usagerecord"
)
OUTBOX_GROUP = "usage-ledger"
_QUOTA_HASH = re.compile(r":q\d+:[^:]+$")
_COUNTER = re.compile(r":t:(rpm|tpm):s:(\d+)$")


@dataclass(frozen=True)
class Record:
    request_id: str
    client_request_id: str
    status: int
    streamed: bool
    prompt_tokens: int
    completion_tokens: int
    cost_micro: int  # rounded up to the micro-dollar, as settlement counts it
    error_type: str
    usage_estimated: bool
    client_disconnected: bool

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def read_records(database_url: str) -> list[Record]:
    with psycopg.connect(database_url, connect_timeout=5) as conn:
        return [Record(*row) for row in conn.execute(RECORDS_SQL).fetchall()]


def record_count(database_url: str) -> int | None:
    """How many records are stored; None while the database does not answer."""
    try:
        with psycopg.connect(database_url, connect_timeout=2) as conn:
            row = conn.execute("SELECT count(*) FROM accounting_usagerecord").fetchone()
    except psycopg.OperationalError:
        return None
    return int(row[0]) if row else 0


def redis_now_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


@dataclass(frozen=True)
class RedisState:
    """The cost quota (summed over its period hashes: one unless a month ended mid-run), the
    parallel slots and the outbox, at one moment of Redis's clock."""

    now_ms: int
    quota_spent_micro: int
    quota_reserved_micro: int
    reservations: int  # r:<request id> fields in the quota hashes
    leases: int  # members of the leases sets (a lease that ended stays until the next decision)
    live_leases: int
    parallel_slots: int
    live_parallel_slots: int
    outbox_length: int
    outbox_pending: int
    negative_counters: int  # rate counters below zero (settlement never lets one go there)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _sum_zsets(client: redis.Redis, *, keys: list[bytes], now_ms: int) -> tuple[int, int]:
    total = sum(int(client.zcard(key)) for key in keys)
    live = sum(int(client.zcount(key, f"({now_ms}", "+inf")) for key in keys)
    return total, live


def _outbox(client: redis.Redis, *, stream: str) -> tuple[int, int]:
    if not client.exists(stream):
        return 0, 0
    try:
        pending = int(client.xpending(stream, OUTBOX_GROUP)["pending"])
    except redis.ResponseError:  # no consumer group yet
        pending = 0
    return int(client.xlen(stream)), pending


def _quota_hashes(client: redis.Redis, *, keys: list[bytes]) -> tuple[int, int, int]:
    spent = reserved = fields = 0
    for key in keys:
        values: dict[bytes, bytes] = client.hgetall(key)  # type: ignore[assignment]
        spent += int(values.get(b"spent", 0))
        reserved += int(values.get(b"reserved", 0))
        fields += sum(1 for name in values if name.startswith(b"r:"))
    return spent, reserved, fields


def read_redis_state(client: redis.Redis, *, prefix: str) -> RedisState:
    now_ms = redis_now_ms(client)
    keys = [key for key in client.scan_iter(match=f"{prefix}*", count=1000)]
    names = {key: key.decode() for key in keys}
    quota = [k for k in keys if _QUOTA_HASH.search(names[k]) and client.type(k) == b"hash"]
    leases = [k for k in keys if names[k].endswith(":leases")]
    parallel = [k for k in keys if names[k].endswith(":par")]
    counters = [k for k in keys if _COUNTER.search(names[k])]
    spent, reserved, fields = _quota_hashes(client, keys=quota)
    leases_total, leases_live = _sum_zsets(client, keys=leases, now_ms=now_ms)
    slots_total, slots_live = _sum_zsets(client, keys=parallel, now_ms=now_ms)
    length, pending = _outbox(client, stream=f"{prefix}usage:outbox")
    return RedisState(
        now_ms=now_ms,
        quota_spent_micro=spent,
        quota_reserved_micro=reserved,
        reservations=fields,
        leases=leases_total,
        live_leases=leases_live,
        parallel_slots=slots_total,
        live_parallel_slots=slots_live,
        outbox_length=length,
        outbox_pending=pending,
        negative_counters=sum(1 for k in counters if int(client.get(k) or 0) < 0),
    )


def held_request_ids(client: redis.Redis, *, prefix: str) -> set[str]:
    """The gateway's ids of the requests holding a quota reservation or a parallel slot."""
    held: set[str] = set()
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        name = key.decode()
        if name.endswith(":par"):
            members: list[bytes] = client.zrange(key, 0, -1)  # type: ignore[assignment]
            held.update(member.decode() for member in members)
        elif _QUOTA_HASH.search(name) and client.type(key) == b"hash":
            fields: list[bytes] = client.hkeys(key)  # type: ignore[assignment]
            held.update(field.decode()[2:] for field in fields if field.startswith(b"r:"))
    return held


def window_counters(client: redis.Redis, *, prefix: str, window: int) -> dict[str, int]:
    """The sliding-window rate counters of one minute window (its index since the epoch):
    ``rpm`` and ``tpm``, summed over the scopes counted (0 where none exists yet)."""
    totals = {"rpm": 0, "tpm": 0}
    for key in client.scan_iter(match=f"{prefix}*:t:*:s:{window}", count=1000):
        match = _COUNTER.search(key.decode())
        if match:
            totals[match.group(1)] += int(client.get(key) or 0)
    return totals


@dataclass(frozen=True)
class SpoolState:
    lines: int  # events waiting in the spool file (0: replayed, or never used)
    rejected_lines: int  # lines set aside as not being usage events

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _lines(path: Path) -> int:
    try:
        return len(path.read_bytes().splitlines())
    except FileNotFoundError:
        return 0


def read_spool(path: Path) -> SpoolState:
    return SpoolState(lines=_lines(path), rejected_lines=_lines(path.with_name(path.name + ".rejected")))
