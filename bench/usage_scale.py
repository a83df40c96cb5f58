"""Usage records at scale on a PostgreSQL of the run's own (``python -m bench.usage_scale
--records 10000000``): the partitioned table filled with ``--records`` records over the last 60
days (plus ``--hour-records`` in the current hour: what 1000 requests a second leave in an
hour), then measured:

- the ledger's insert rate: the usage writer's statement (``accounting.recorder.write_events``,
  batches of 500) for ``--inserts`` events;
- the first rollup (every hour at once) and a steady run (the current hour recomputed);
- report latency: a tenant's 30 days by day and by model, and every tenant's;
- retention: dropping the oldest month's partition.

The bulk fill is SQL (``generate_series``), not the ledger's path; its rate is reported apart."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from bench.postgres_cluster import OwnedPostgres
from bench.upstreams import ROOT

if TYPE_CHECKING:
    from django.db.backends.utils import CursorWrapper

MODELS = 20  # rollup groups per hour: the bulk rows' tenant and key are one (deleted) pair


def _timed(what: str, work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    seconds = time.perf_counter() - started
    print(f"  {what:48} {seconds:9.2f} s", flush=True)
    return seconds


def _fill(
    cursor: CursorWrapper, *, records: int, since: dt.datetime, until: dt.datetime, prefix: str
) -> None:
    span = (until - since).total_seconds()
    cursor.execute(
        """INSERT INTO accounting_usagerecord (request_id, client_request_id, created_at, ingested_at,
             tenant_id, tenant_name, key_id, key_prefix, endpoint, model, deployment_id, provider,
             upstream_model, prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens,
             usage_estimated, cache_write_tokens, cost_usd, cache_hit, cost_saved_usd, status,
             error_type, streamed, client_disconnected, latency_ms, upstream_latency_ms)
           SELECT %s || g, '', %s::timestamptz + (g * %s / %s) * interval '1 second',
             %s::timestamptz + (g * %s / %s) * interval '1 second' + interval '1 second',
             NULL, 'bulk', NULL, 'sk-gw-bulk', 'chat.completions',
             'model-' || (g %% %s), 1, 'prov', 'up',
             100 + g %% 50, 20 + g %% 7, 0, 0, false, 0, 0.0001, false, 0, 200, '', false, false, 40, 35
           FROM generate_series(1, %s) AS g""",
        [prefix, since, span, records, since, span, records, MODELS, records],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--hour-records", type=int, default=3_600_000)
    parser.add_argument("--inserts", type=int, default=100_000)
    args = parser.parse_args()
    postgres = OwnedPostgres(fsync=False).init("gateway")
    try:
        os.environ.update(
            {"DATABASE_URL": postgres.url("gateway"), "SECRET_KEY": "bench", "GATEWAY_LOG_LEVEL": "WARNING"}
        )
        os.environ.pop("REDIS_URL", None)
        os.chdir(ROOT)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_site.settings")
        import django

        django.setup()
        _measure(args)
    finally:
        postgres.destroy()


def _measure(args: argparse.Namespace) -> None:
    from django.core.management import call_command
    from django.db import connection

    from accounting.partitions import month_tables, usage_partitions_drop, usage_partitions_prepare
    from accounting.recorder import UsageEvent, write_events
    from accounting.reports import Scope, usage_report
    from accounting.rollups import usage_rollup
    from quotas.services import key_issue, tenant_create

    call_command("migrate", verbosity=0)
    now = dt.datetime.now(dt.UTC)
    usage_partitions_prepare(now=now - dt.timedelta(days=60), ahead=3)
    hour = now.replace(minute=0, second=0, microsecond=0)
    print(
        f"usage records: {args.records:,} over 60 days + {args.hour_records:,} in the current hour",
        flush=True,
    )
    with connection.cursor() as cursor:
        filled = _timed(
            "bulk fill (SQL, not the ledger's path)",
            lambda: _fill(
                cursor, records=args.records, since=now - dt.timedelta(days=60), until=hour, prefix="bulk-"
            ),
        )
        _timed(
            "current hour fill",
            lambda: _fill(cursor, records=args.hour_records, since=hour, until=now, prefix="hour-"),
        )
        _timed("ANALYZE", lambda: cursor.execute("ANALYZE accounting_usagerecord"))
        cursor.execute(
            "SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits "
            "WHERE inhparent = 'accounting_usagerecord'::regclass"
        )
        size = int(cursor.fetchone()[0])
    total = args.records + args.hour_records
    print(f"  on disk with indexes: {size / 2**30:.2f} GiB, {size / total:.0f} bytes a record", flush=True)
    print(f"  bulk fill rate {args.records / filled:,.0f} records/s", flush=True)
    tenant = tenant_create(name="ledger")
    key, _ = key_issue(tenant=tenant, name="ledger")
    events = [
        UsageEvent(
            request_id=f"ledger-{i}", client_request_id="", created_at=now.timestamp(),
            tenant_id=tenant.pk, tenant_name="ledger", key_id=key.pk, key_prefix=key.prefix,
            model="gpt-4o-mini", status=200, latency_ms=40.0, prompt_tokens=120, completion_tokens=25,
        )
        for i in range(args.inserts)
    ]  # fmt: skip
    seconds = _timed(f"ledger inserts ({args.inserts:,}, batches of 500)", lambda: [
        write_events(events[i : i + 500]) for i in range(0, len(events), 500)])  # fmt: skip
    print(f"  ledger insert rate {args.inserts / seconds:,.0f} records/s", flush=True)
    time.sleep(2.5)  # past the rollup's lag
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM accounting_usagerecord_default")
        print(f"  records in the default partition: {cursor.fetchone()[0]}", flush=True)
    _timed("first rollup (every hour)", lambda: usage_rollup())
    _timed("steady rollup (the current hour)", lambda: usage_rollup())
    scope = Scope(tenant_id=None, start=(now - dt.timedelta(days=30)).date(), end=now.date())
    _timed("report: every tenant, 30 days, by day", lambda: usage_report(scope, granularity="day"))
    _timed("report: every tenant, 30 days, by model", lambda: usage_report(scope, group_by="model"))
    oldest = min(month_tables(), key=lambda name: month_tables()[name][0])
    cutoff = month_tables()[oldest][1]
    _timed(
        f"retention: drop {oldest}",
        lambda: usage_partitions_drop(cutoff=cutoff, rolled_through=now + dt.timedelta(days=1)),
    )


if __name__ == "__main__":
    main()
