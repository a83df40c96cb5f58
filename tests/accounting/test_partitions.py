"""Usage records partitioned by month on PostgreSQL, against the real server: each record lands
in its month's table, a duplicate is still stored once, months are prepared ahead (taking over
what the default partition held of them), retention drops whole months once rolled up (and
only then), and the migration rebuilds the table both ways with every row kept."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.db import connection

from accounting.models import UsageRecord, UsageRollup
from accounting.partitions import Month, month_tables, partitioned, usage_partitions_prepare
from accounting.recorder import UsageEvent, write_events
from accounting.rollups import usage_purge, usage_rollup

pytestmark = pytest.mark.django_db(transaction=True)

TABLE = UsageRecord._meta.db_table


@pytest.fixture(autouse=True)
def _postgres():
    if connection.vendor != "postgresql":
        pytest.fail("partitioning is PostgreSQL's; these tests need DATABASE_URL on PostgreSQL")


def at(moment: dt.datetime, request_id: str, key) -> UsageEvent:
    return UsageEvent(
        request_id=request_id,
        client_request_id="",
        created_at=moment.timestamp(),
        tenant_id=key.tenant.pk,
        tenant_name=key.tenant.name,
        key_id=key.key_id,
        key_prefix="sk-gw-test",
        model="gpt-4o-mini",
        status=200,
        latency_ms=1.0,
    )


def where(request_id: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text FROM {TABLE} WHERE request_id = %s", [request_id])
        (name,) = cursor.fetchone()
    return name


def months_from(now: dt.datetime, count: int) -> list[str]:
    month, names = Month.of(now), []
    for _ in range(count):
        names.append(month.table())
        month = month.next()
    return names


def test_the_table_is_partitioned_with_the_months_ahead_and_a_default():
    now = dt.datetime.now(dt.UTC)
    assert partitioned()
    assert set(months_from(now, 4)) <= set(month_tables())
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_class WHERE relname = %s", [f"{TABLE}_default"])
        assert cursor.fetchone() == (1,)


def test_records_land_in_their_month_and_a_duplicate_is_stored_once(make_key):
    key = make_key()
    now = dt.datetime.now(dt.UTC)
    later = Month.of(now).next().start() + dt.timedelta(days=3)
    events = [at(now, "req_now", key), at(later, "req_later", key)]
    write_events(events)
    write_events(events)  # the same events again (outbox and fallback writer, a replay)
    assert UsageRecord.objects.count() == 2
    assert where("req_now") == Month.of(now).table()
    assert where("req_later") == Month.of(later).table()


def test_a_month_prepared_late_takes_over_its_records_from_the_default_partition(make_key):
    key = make_key()
    far = dt.datetime.now(dt.UTC) + dt.timedelta(days=31 * 8)
    write_events([at(far, "req_far", key)])
    assert where("req_far") == f"{TABLE}_default"

    created = usage_partitions_prepare(now=far, ahead=1)

    assert created == months_from(far, 2)
    assert where("req_far") == Month.of(far).table()
    assert usage_partitions_prepare(now=far, ahead=1) == []  # prepared once
    assert UsageRecord.objects.filter(request_id="req_far").count() == 1


def test_retention_drops_whole_months_once_rolled_up(make_key):
    key = make_key()
    now = dt.datetime.now(dt.UTC)
    old = now - dt.timedelta(days=31 * 7)
    usage_partitions_prepare(now=old, ahead=0)
    write_events(
        [at(old, "req_old", key), at(old + dt.timedelta(hours=1), "req_old2", key), at(now, "req_now", key)]
    )
    cutoff = now - dt.timedelta(days=90)

    # nothing rolled up yet: the old month stays
    assert usage_purge(cutoff=cutoff) == 0
    assert Month.of(old).table() in month_tables()

    UsageRecord.objects.update(ingested_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=10))
    usage_rollup()
    rollups = UsageRollup.objects.count()
    assert usage_purge(cutoff=cutoff) == 0  # no row deleted one by one

    assert Month.of(old).table() not in month_tables()
    assert list(UsageRecord.objects.values_list("request_id", flat=True)) == ["req_now"]
    assert UsageRollup.objects.count() == rollups
    assert sum(UsageRollup.objects.filter(granularity="hour").values_list("requests", flat=True)) == 3


def test_the_migration_rebuilds_the_table_both_ways_keeping_every_row(make_key):
    key = make_key()
    now = dt.datetime.now(dt.UTC)
    write_events([at(now, "req_a", key), at(now - dt.timedelta(days=40), "req_b", key)])
    before = sorted(UsageRecord.objects.values_list("id", "request_id", "created_at"))

    call_command("migrate", "accounting", "0004", verbosity=0)
    try:
        assert not partitioned()
        assert sorted(UsageRecord.objects.values_list("id", "request_id", "created_at")) == before
    finally:
        call_command("migrate", "accounting", verbosity=0)

    assert partitioned()
    assert sorted(UsageRecord.objects.values_list("id", "request_id", "created_at")) == before
    assert where("req_b") == Month.of(now - dt.timedelta(days=40)).table()
    write_events([at(now, "req_c", key)])  # the id sequence goes on after the copied rows
    assert UsageRecord.objects.get(request_id="req_c").id > max(row[0] for row in before)
