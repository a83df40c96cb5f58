"""Usage rollups per tenant, key, model, provider and hour (and day), and the retention of raw
records. Reports read rollups; raw records are only read here and for the last seconds not
yet rolled up (``unrolled_records``).

How it stays exact and idempotent: every raw record gets ``ingested_at`` from the database's
clock when inserted. A run picks a watermark ``W`` (database now minus ``LAG``), finds the hours
of the records ingested since the previous watermark (minus ``OVERLAP``, for transactions that
committed late), and recomputes each such hour from the raw records ingested up to ``W``,
upserting on the rollup's unique key; then the days of those hours from their hours. Running it
twice changes nothing; a late event (an old ``created_at``, ingested now) makes its hour dirty and
is counted. So at any moment: rollups = records ingested up to ``W``, and the records ingested
after ``W`` are "unrolled" (the summary adds them).

Retention deletes raw records older than the cutoff and already rolled up, in batches (on
PostgreSQL, whole month partitions: ``accounting.partitions``); rollups are kept. Hours before
the cutoff are never recomputed (their raw records may be gone): a record of such an hour
arriving late is added to its rollups and deleted in one step (``_fold_late``)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, F, Max, Q, QuerySet, Sum, Value
from django.db.models.functions import Ceil, TruncHour

from accounting.models import RollupState, UsageRecord, UsageRollup
from accounting.partitions import partitioned, usage_default_purge, usage_partitions_drop

logger = logging.getLogger(__name__)

LAG = dt.timedelta(seconds=2)  # inserts still committing are not rolled up yet
OVERLAP = dt.timedelta(minutes=5)  # re-examine records ingested this long before the watermark
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
_GROUP = ("tenant_id", "tenant_name", "key_id", "key_prefix", "model", "provider")
# A record's cost in micro-dollars rounded up: what the cost quota counters add per request.
MICRO_COST = Ceil(F("cost_usd") * Value(Decimal(1_000_000)))
RECORD_SUMS = {  # a rollup's columns as aggregates of raw records
    # First: once "cost_usd" names the summed annotation, F("cost_usd") would mean the sum.
    "cost_micro": Sum(MICRO_COST),
    "requests": Count("id"),
    "errors": Count("id", filter=Q(status__gte=400)),
    "cache_hits": Count("id", filter=Q(cache_hit=True)),
    "prompt_tokens": Sum("prompt_tokens"),
    "completion_tokens": Sum("completion_tokens"),
    "cached_tokens": Sum("cached_tokens"),
    "reasoning_tokens": Sum("reasoning_tokens"),
    "cost_usd": Sum("cost_usd"),
    "cost_saved_usd": Sum("cost_saved_usd"),
    "latency_ms_sum": Sum("latency_ms"),
}
_UNIQUE = ["granularity", "bucket_start", "tenant_id", "key_id", "model", "provider"]
_UPDATED = ["tenant_name", "key_prefix", *RECORD_SUMS]


def hour_floor(moment: dt.datetime) -> dt.datetime:
    """The start of the UTC hour (the rollups' bucket) that holds ``moment``."""
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def hour_ceil(moment: dt.datetime) -> dt.datetime:
    """The first bucket start at or after ``moment``."""
    floor = hour_floor(moment)
    return floor if floor == moment else floor + HOUR


def database_now() -> dt.datetime:
    with connection.cursor() as cursor:
        cursor.execute("SELECT CURRENT_TIMESTAMP")
        row = cursor.fetchone()
    value = row[0] if row else None
    if isinstance(value, str):  # SQLite answers text, in UTC
        value = dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime):
        raise TypeError(f"the database's CURRENT_TIMESTAMP is {value!r}")
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def watermark() -> dt.datetime | None:
    """Records ingested up to this moment are in the rollups (None: nothing rolled up yet)."""
    state = RollupState.objects.filter(pk=1).first()
    return state.rolled_through if state is not None else None


def unrolled_records(mark: dt.datetime | None = None) -> QuerySet[UsageRecord]:
    mark = watermark() if mark is None else mark
    records = UsageRecord.objects.all()
    return records if mark is None else records.filter(ingested_at__gt=mark)


def _hour_rows(hour: dt.datetime, mark: dt.datetime) -> list[UsageRollup]:
    rows = (
        UsageRecord.objects.filter(created_at__gte=hour, created_at__lt=hour + HOUR, ingested_at__lte=mark)
        .values(*_GROUP)
        .annotate(**RECORD_SUMS)
    )
    return [_rollup("hour", hour, row) for row in rows]


def _day_rows(day: dt.datetime) -> list[UsageRollup]:
    rows = (
        UsageRollup.objects.filter(granularity="hour", bucket_start__gte=day, bucket_start__lt=day + DAY)
        .values("tenant_id", "key_id", "model", "provider")
        .annotate(
            tenant_name=Max("tenant_name"),
            key_prefix=Max("key_prefix"),
            **{name: Sum(name) for name in RECORD_SUMS},
        )
    )
    return [_rollup("day", day, row) for row in rows]


def _rollup(granularity: str, start: dt.datetime, row: Mapping[str, Any]) -> UsageRollup:
    values = {name: row[name] or 0 for name in RECORD_SUMS}
    return UsageRollup(
        granularity=granularity,
        bucket_start=start,
        tenant_id=row["tenant_id"] or 0,
        tenant_name=row["tenant_name"] or "",
        key_id=row["key_id"] or 0,
        key_prefix=row["key_prefix"] or "",
        model=row["model"],
        provider=row["provider"],
        **values,
    )


def _replace_bucket(granularity: str, start: dt.datetime, rows: list[UsageRollup]) -> None:
    """The bucket's rows become exactly ``rows``: upsert on the unique key, and drop groups that
    no longer have records (never happens for hours after the retention cutoff)."""
    if rows:
        UsageRollup.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=_UNIQUE, update_fields=_UPDATED, batch_size=500
        )
    keep = {(r.tenant_id, r.key_id, r.model, r.provider) for r in rows}
    for row in UsageRollup.objects.filter(granularity=granularity, bucket_start=start):
        if (row.tenant_id, row.key_id, row.model, row.provider) not in keep:
            row.delete()


@dataclass(frozen=True, slots=True)
class RollupResult:
    hours: int
    days: int
    rolled_through: dt.datetime
    folded: int = 0  # records later than the retention, added to their rollups and deleted


def _add_to_bucket(granularity: str, start: dt.datetime, sums: Mapping[str, Any]) -> None:
    row = _rollup(granularity, start, sums)
    bucket = UsageRollup.objects.filter(
        granularity=granularity,
        bucket_start=start,
        tenant_id=row.tenant_id,
        key_id=row.key_id,
        model=row.model,
        provider=row.provider,
    )
    if not bucket.update(**{name: F(name) + getattr(row, name) for name in RECORD_SUMS}):
        row.save(force_insert=True)


def _fold_late(cutoff: dt.datetime, previous: dt.datetime | None, mark: dt.datetime) -> int:
    """Records of hours before the retention cutoff that arrived since the previous run (a spool
    replayed, a gateway clock far behind): their hours are not recomputed (the raw records may be
    purged), so their sums are added to the hour's and the day's rollups and the records deleted,
    in the run's transaction: each is counted exactly once, and none is lost to the purge."""
    # the records of the hours that start before the cutoff
    late = UsageRecord.objects.filter(created_at__lt=hour_ceil(cutoff), ingested_at__lte=mark)
    if previous is not None:
        late = late.filter(ingested_at__gt=previous)
    ids = list(late.order_by().values_list("id", flat=True))
    if not ids:
        return 0
    groups = (
        UsageRecord.objects.filter(id__in=ids)
        .order_by()
        .annotate(hour=TruncHour("created_at"))
        .values("hour", *_GROUP)
        .annotate(**RECORD_SUMS)
    )
    for group in groups:
        _add_to_bucket("hour", group["hour"], group)
        _add_to_bucket("day", group["hour"].replace(hour=0), group)
    UsageRecord.objects.filter(id__in=ids).delete()
    logger.warning("folded %d usage records older than the retention into their rollups", len(ids))
    return len(ids)


def usage_rollup(*, retention_cutoff: dt.datetime | None = None, lag: dt.timedelta = LAG) -> RollupResult:
    """Roll up every hour with records ingested since the last run (see the module docstring)."""
    with transaction.atomic():
        state, _ = RollupState.objects.select_for_update().get_or_create(pk=1)
        previous = state.rolled_through
        mark = database_now() - lag
        fresh = UsageRecord.objects.filter(ingested_at__lte=mark)
        if previous is not None:
            fresh = fresh.filter(ingested_at__gt=previous - OVERLAP)
        # order_by(): the model's default ordering would make DISTINCT per record, not per hour.
        hours = sorted(
            set(fresh.order_by().annotate(h=TruncHour("created_at")).values_list("h", flat=True).distinct())
        )
        folded = 0
        if retention_cutoff is not None:
            hours = [h for h in hours if h >= retention_cutoff]
            folded = _fold_late(retention_cutoff, previous, mark)
        for hour in hours:
            _replace_bucket("hour", hour, _hour_rows(hour, mark))
        days = sorted({h.replace(hour=0) for h in hours})
        for day in days:
            _replace_bucket("day", day, _day_rows(day))
        state.rolled_through = mark
        state.save(update_fields=["rolled_through"])
    return RollupResult(hours=len(hours), days=len(days), rolled_through=mark, folded=folded)


def usage_purge(*, cutoff: dt.datetime, batch_size: int = 5000) -> int:
    """Delete raw records created before ``cutoff`` and already rolled up, ``batch_size`` at a
    time (short transactions); returns how many. With the records partitioned by month
    (PostgreSQL), whole months go instead (``accounting.partitions``): a month once it ended
    before ``cutoff``, so records stay up to a month past the retention; only the default
    partition's are deleted row by row. Returns the records deleted row by row."""
    mark = watermark()
    if mark is None:
        return 0
    if partitioned():
        usage_partitions_drop(cutoff=cutoff, rolled_through=mark)
        return usage_default_purge(cutoff=cutoff, rolled_through=mark, batch_size=batch_size)
    deleted = 0
    while True:
        ids = list(
            UsageRecord.objects.filter(created_at__lt=cutoff, ingested_at__lte=mark)
            .order_by()
            .values_list("id", flat=True)[:batch_size]
        )
        if not ids:
            return deleted
        deleted += UsageRecord.objects.filter(id__in=ids).delete()[0]
