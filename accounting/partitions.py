"""Usage records partitioned by month, on PostgreSQL: ``UsageRecord``'s table is partitioned by
range of ``created_at`` (UTC months, one table each, ``<table>_p2026_12``), with a default
partition for a record no month table takes yet (a clock far off, a month not prepared). On
SQLite (the embedded default) the table stays a plain one and nothing here does anything.

Months are prepared ahead (``usage_partitions_prepare``, from beat: the current month and
``ahead`` more), so inserts never wait on DDL; a month prepared while the default partition
holds some of its records takes them over in the same transaction. Retention drops whole months
(``usage_partitions_drop``): a month goes once its last moment is older than the cutoff and
every record in it is rolled up; rows are never deleted one by one.

Why the keys look as they do: PostgreSQL's unique indexes on a partitioned table must include
the partition key, so the primary key is (``id``, ``created_at``) and a request id is unique
with its ``created_at``: a duplicate of an event (outbox and fallback writer, two consumers, a
spool replay) carries the same ``created_at``, so it is still stored once."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.db import connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from accounting.models import UsageRecord

logger = logging.getLogger(__name__)

# pg_advisory_xact_lock key: one preparer or dropper at a time (every gateway's in-process beat
# may run them). Transaction-scoped, so it works behind PgBouncer in transaction mode.
_LOCK_KEY = 7_310_002_017


@dataclass(frozen=True, slots=True)
class Month:
    year: int
    month: int

    @classmethod
    def of(cls, moment: dt.datetime) -> Month:
        moment = moment.astimezone(dt.UTC)
        return cls(moment.year, moment.month)

    def start(self) -> dt.datetime:
        return dt.datetime(self.year, self.month, 1, tzinfo=dt.UTC)

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def table(self) -> str:
        return f"{UsageRecord._meta.db_table}_p{self.year:04d}_{self.month:02d}"


def _connection() -> BaseDatabaseWrapper:
    return connections[router.db_for_write(UsageRecord)]


def partitioned(connection: BaseDatabaseWrapper | None = None) -> bool:
    """Whether the records' table is partitioned (PostgreSQL after the migration)."""
    connection = connection or _connection()
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(%s)",
            [UsageRecord._meta.db_table],
        )
        return cursor.fetchone() is not None


def month_tables(connection: BaseDatabaseWrapper | None = None) -> dict[str, tuple[dt.datetime, dt.datetime]]:
    """The month partitions and their bounds (the default partition is not one of them)."""
    connection = connection or _connection()
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)
               FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
               WHERE i.inhparent = to_regclass(%s)""",
            [UsageRecord._meta.db_table],
        )
        rows = cursor.fetchall()
    tables = {}
    for name, bound in rows:
        if bound == "DEFAULT":
            continue
        low, high = (dt.datetime.fromisoformat(part.split("'")[1]) for part in bound.split(") TO ("))
        tables[name] = (low.astimezone(dt.UTC), high.astimezone(dt.UTC))
    return tables


def create_month(connection: BaseDatabaseWrapper, month: Month) -> None:
    """The month's table, attached, with the default partition's records of that month moved
    into it first (inside the caller's transaction)."""
    quote = connection.ops.quote_name
    parent, table = quote(UsageRecord._meta.db_table), quote(month.table())
    default = quote(f"{UsageRecord._meta.db_table}_default")
    low, high = month.start(), month.next().start()
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {table} (LIKE {parent} INCLUDING CONSTRAINTS)")  # its checks
        cursor.execute(
            f"WITH moved AS (DELETE FROM {default} WHERE created_at >= %s AND created_at < %s RETURNING *) "  # noqa: S608
            f"INSERT INTO {table} SELECT * FROM moved",
            [low, high],
        )
        cursor.execute(
            f"ALTER TABLE {parent} ATTACH PARTITION {table} FOR VALUES FROM (%s) TO (%s)", [low, high]
        )


def usage_partitions_prepare(*, now: dt.datetime, ahead: int) -> list[str]:
    """Create the tables of the current month and ``ahead`` more that do not exist yet;
    returns their names."""
    connection = _connection()
    if not partitioned(connection):
        return []
    created = []
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        existing = month_tables(connection)
        month = Month.of(now)
        for _ in range(ahead + 1):
            if month.table() not in existing:
                create_month(connection, month)
                created.append(month.table())
            month = month.next()
    if created:
        logger.info("usage record partitions created: %s", ", ".join(created))
    return created


def usage_partitions_drop(*, cutoff: dt.datetime, rolled_through: dt.datetime | None) -> list[str]:
    """Detach and drop each month that ended before ``cutoff`` and holds no record ingested
    after ``rolled_through`` (the rollups' watermark: what is not rolled up yet is kept, and
    dropped at a later run); returns their names."""
    connection = _connection()
    if rolled_through is None or not partitioned(connection):
        return []
    quote = connection.ops.quote_name
    dropped = []
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        for name, (_, high) in sorted(month_tables(connection).items()):
            if high > cutoff:
                continue
            cursor.execute(f"SELECT 1 FROM {quote(name)} WHERE ingested_at > %s LIMIT 1", [rolled_through])  # noqa: S608
            if cursor.fetchone() is not None:
                continue
            cursor.execute(f"ALTER TABLE {quote(UsageRecord._meta.db_table)} DETACH PARTITION {quote(name)}")
            cursor.execute(f"DROP TABLE {quote(name)}")
            dropped.append(name)
    if dropped:
        logger.info("usage record partitions dropped (retention): %s", ", ".join(dropped))
    return dropped


def usage_default_purge(*, cutoff: dt.datetime, rolled_through: dt.datetime, batch_size: int) -> int:
    """Delete the default partition's records created before ``cutoff`` and rolled up,
    ``batch_size`` at a time (normally it holds none: only records no month table took)."""
    connection = _connection()
    default = connection.ops.quote_name(f"{UsageRecord._meta.db_table}_default")
    deleted = 0
    while True:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {default} WHERE ctid IN (SELECT ctid FROM {default} "  # noqa: S608
                "WHERE created_at < %s AND ingested_at <= %s LIMIT %s)",
                [cutoff, rolled_through, batch_size],
            )
            count = int(cursor.rowcount)
        deleted += count
        if count < batch_size:
            return deleted
