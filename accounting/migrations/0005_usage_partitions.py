"""Usage records partitioned by month on PostgreSQL (see accounting/partitions.py).

The request id becomes unique together with created_at (a partitioned table's unique indexes
include its partition key). On PostgreSQL the table is then rebuilt as a partitioned one: its
rows copied into month tables (and a default partition), its constraints and indexes recreated
under their own names, its id drawn from a sequence (identity columns are not allowed on
partitioned tables before PostgreSQL 17). The reverse rebuilds a plain table. SQLite keeps its
plain table. The copy holds the table locked: usage waits in the outbox (or the writer's spool)
meanwhile, and is stored once the migration is done."""

import datetime as dt
import re

from django.db import migrations, models

MONTHS_AHEAD = 3


def _months(low, high):
    month = dt.datetime(low.year, low.month, 1, tzinfo=dt.timezone.utc)
    while month <= high:
        following = dt.datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=dt.timezone.utc)
        yield month, following
        month = following


def _definitions(cursor, table):
    """(constraints as (name, definition): keys, foreign keys and checks; other indexes as
    their CREATE statements)."""
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = to_regclass(%s) AND contype IN ('p', 'u', 'f', 'c') ORDER BY contype DESC, conname",
        [table],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "WHERE i.indrelid = to_regclass(%s) "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
        [table],
    )
    return constraints, [row[0] for row in cursor.fetchall()]


def _rebuild(schema_editor, *, partition):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    table = "accounting_usagerecord"
    old = f"{table}_rebuilt"
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        constraints, indexes = _definitions(cursor, table)
        cursor.execute(f"SELECT min(created_at), max(created_at), coalesce(max(id), 0) FROM {table}")
        low, high, last_id = cursor.fetchone()
        cursor.execute(f"ALTER TABLE {table} RENAME TO {old}")
        for name, _ in constraints:
            cursor.execute(f"ALTER TABLE {old} RENAME CONSTRAINT {quote(name)} TO {quote(name + '_old')}")
        cursor.execute(f"ALTER INDEX IF EXISTS {table}_pkey RENAME TO {old}_pkey")
        for statement in indexes:
            name = statement.split(" INDEX ", 1)[1].split(" ON ", 1)[0]
            cursor.execute(f"ALTER INDEX {name} RENAME TO {quote(name.strip(chr(34)) + '_old')}")
        suffix = " PARTITION BY RANGE (created_at)" if partition else ""
        cursor.execute(f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS){suffix}")
        cursor.execute(f"CREATE SEQUENCE {table}_id_rebuilt_seq OWNED BY {table}.id")
        cursor.execute(f"SELECT setval('{table}_id_rebuilt_seq', %s, %s)", [max(last_id, 1), last_id > 0])
        cursor.execute(f"ALTER TABLE {table} ALTER COLUMN id SET DEFAULT nextval('{table}_id_rebuilt_seq')")
        if partition:
            cursor.execute(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")
            now = dt.datetime.now(dt.timezone.utc)
            first = min(low or now, now)
            last = max(high or now, now + dt.timedelta(days=31 * MONTHS_AHEAD))
            for start, end in _months(first, last):
                cursor.execute(
                    f"CREATE TABLE {table}_p{start:%Y_%m} PARTITION OF {table} FOR VALUES FROM (%s) TO (%s)",
                    [start, end],
                )
        cursor.execute(f"INSERT INTO {table} SELECT * FROM {old}")
        cursor.execute(f"DROP TABLE {old}")
        cursor.execute(f"ALTER SEQUENCE {table}_id_rebuilt_seq RENAME TO {table}_id_seq")
        for name, definition in constraints:
            if definition.startswith("PRIMARY KEY"):
                definition = "PRIMARY KEY (id, created_at)" if partition else "PRIMARY KEY (id)"
            cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {quote(name)} {definition}")
        for statement in indexes:
            # a partitioned table's index reads "ON ONLY <table>": recreated on the whole table
            cursor.execute(re.sub(rf" ON (ONLY )?(\S+\.)?{old} ", f" ON {table} ", statement))


def partition(apps, schema_editor):
    _rebuild(schema_editor, partition=True)


def unpartition(apps, schema_editor):
    _rebuild(schema_editor, partition=False)


class Migration(migrations.Migration):
    dependencies = [
        ("accounting", "0004_rollup_cost_micro"),
    ]

    operations = [
        migrations.AlterField(
            model_name="usagerecord",
            name="request_id",
            field=models.CharField(db_index=True, help_text="The gateway's own id.", max_length=64),
        ),
        migrations.AddConstraint(
            model_name="usagerecord",
            constraint=models.UniqueConstraint(fields=("request_id", "created_at"), name="usage_request_once"),
        ),
        migrations.RunPython(partition, unpartition),
    ]
