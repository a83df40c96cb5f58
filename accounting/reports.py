"""Usage reports: totals and time series over a date range, per tenant (or all tenants), grouped
by tenant, model, key or provider. They read the rollups, plus the few raw records ingested since the
last rollup run (``accounting.rollups.unrolled_records``), so a report is complete the moment a
record is stored, and never scans the raw table beyond those.

Dates are UTC days; ``end`` is inclusive."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from django.db.models import QuerySet, Sum
from django.db.models.functions import TruncDay, TruncHour

from accounting.models import UsageRecord, UsageRollup
from accounting.rollups import RECORD_SUMS, unrolled_records
from quotas.money import usd_plain

GroupBy = Literal["tenant", "model", "key", "provider", "subject"]
Granularity = Literal["day", "hour"]
GROUP_FIELDS: dict[str, tuple[str, ...]] = {
    "tenant": ("tenant_id", "tenant_name"),
    "model": ("model",),
    "key": ("key_id", "key_prefix"),
    "provider": ("provider",),
    # A bearer token's subject (None for a gateway key's requests): the rollups do not carry it,
    # so a report by subject reads the window's raw records (``_raw_only``).
    "subject": ("subject",),
}
METRICS = ("requests", "errors", "prompt_tokens", "completion_tokens", "cached_tokens", "cost_usd")


@dataclass(frozen=True, slots=True)
class Scope:
    """What a report covers: one tenant (``tenant_id``) or every tenant (None), and the UTC
    days ``start`` to ``end`` inclusive."""

    tenant_id: int | None
    start: dt.date
    end: dt.date
    key_id: int | None = None  # narrower still: one key of the tenant
    # Or one subject of bearer tokens: read from the raw records (the rollups have no subject).
    subject: str | None = None
    # With tenant_id None: only these tenants (a tenant admin's), when set.
    tenant_ids: frozenset[int] | None = None

    @property
    def since(self) -> dt.datetime:
        return dt.datetime(self.start.year, self.start.month, self.start.day, tzinfo=dt.UTC)

    @property
    def until(self) -> dt.datetime:
        return dt.datetime(self.end.year, self.end.month, self.end.day, tzinfo=dt.UTC) + dt.timedelta(days=1)


@dataclass(slots=True)
class Row:
    group: dict[str, object] = field(default_factory=dict)
    bucket: dt.datetime | None = None
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: Decimal = Decimal(0)

    def add(self, values: dict[str, Any]) -> None:
        for name in METRICS:  # int or Decimal, as declared above, whatever the database returned
            total = getattr(self, name)
            setattr(self, name, total + type(total)(values[name] or 0))

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {}
        if self.bucket is not None:
            out["bucket"] = self.bucket.isoformat()
        out.update(self.group)
        out.update(
            requests=self.requests,
            errors=self.errors,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            cached_tokens=self.cached_tokens,
            cost_usd=usd_plain(self.cost_usd),
        )
        return out


def _owned(rows: QuerySet[Any], scope: Scope) -> QuerySet[Any]:
    rows = rows if scope.tenant_id is None else rows.filter(tenant_id=scope.tenant_id)
    rows = rows if scope.tenant_ids is None else rows.filter(tenant_id__in=sorted(scope.tenant_ids))
    return rows if scope.key_id is None else rows.filter(key_id=scope.key_id)


def _raw_only(scope: Scope, group_by: GroupBy | None) -> bool:
    return scope.subject is not None or group_by == "subject"


def _rollups(scope: Scope, granularity: Granularity) -> QuerySet[UsageRollup]:
    rows = UsageRollup.objects.filter(
        granularity=granularity, bucket_start__gte=scope.since, bucket_start__lt=scope.until
    )
    return _owned(rows, scope)


def _unrolled(scope: Scope, group_by: GroupBy | None) -> QuerySet[UsageRecord]:
    if _raw_only(scope, group_by):  # every raw record of the window, rolled up or not
        records = UsageRecord.objects.all()
        if scope.subject is not None:
            records = records.filter(subject=scope.subject)
        return _owned(records.filter(created_at__gte=scope.since, created_at__lt=scope.until), scope)
    return _owned(unrolled_records().filter(created_at__gte=scope.since, created_at__lt=scope.until), scope)


_RAW_SUMS = {name: RECORD_SUMS[name] for name in METRICS}
_ROLLUP_SUMS = {name: Sum(name) for name in METRICS}


def usage_report(
    scope: Scope, *, group_by: GroupBy | None = None, granularity: Granularity | None = None
) -> list[Row]:
    """Totals (``granularity`` None) or a time series, optionally grouped; rows sorted by bucket
    then group."""
    fields = GROUP_FIELDS[group_by] if group_by else ()
    source: Granularity = granularity or "day"
    bucketed = ("bucket_start",) if granularity else ()
    rows: dict[tuple[object, ...], Row] = defaultdict(Row)
    names = (*bucketed, *fields)
    rolled = () if _raw_only(scope, group_by) else _grouped(_rollups(scope, source), names, _ROLLUP_SUMS)
    for values in rolled:
        _merge(rows, values, fields, values.get("bucket_start"))
    trunc = TruncHour("created_at") if granularity == "hour" else TruncDay("created_at")
    unrolled = _unrolled(scope, group_by)
    raw = unrolled.annotate(bucket_start=trunc) if granularity else unrolled
    for values in _grouped(raw, names, _RAW_SUMS):
        _merge(rows, values, fields, values.get("bucket_start"))
    return [rows[k] for k in sorted(rows, key=_sort_key) if rows[k].requests]


def _grouped(rows: QuerySet[Any], names: tuple[str, ...], sums: dict[str, Any]) -> list[dict[str, Any]]:
    if not names:
        return [rows.aggregate(**sums)]
    return list(rows.order_by().values(*names).annotate(**sums))


def _merge(
    rows: dict[tuple[object, ...], Row], values: dict[str, object], fields: tuple[str, ...], bucket: object
) -> None:
    # A missing id (a deleted key, a token's request) groups as 0; a key's requests have no subject.
    group = {name: (values[name] if values[name] is not None or name == "subject" else 0) for name in fields}
    key = (bucket, *group.values())
    row = rows[key]
    row.group = group
    row.bucket = bucket if isinstance(bucket, dt.datetime) else None
    row.add(values)


def _sort_key(key: tuple[object, ...]) -> tuple[str, ...]:
    return tuple("" if part is None else str(part) for part in key)


def usage_summary(scope: Scope) -> Row:
    rows = usage_report(scope)
    return rows[0] if rows else Row()
