"""Rollups and retention against the real Postgres: exact sums per tenant, key, model, provider
and hour/day; running twice changes nothing; late events are counted; reports include records
not yet rolled up; raw records past the retention are deleted in batches, rollups kept."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from accounting.models import UsageRecord, UsageRollup
from accounting.recorder import UsageEvent, write_events
from accounting.reports import Scope, usage_report, usage_summary
from accounting.rollups import usage_purge, usage_rollup
from tests.accounting.events import usage_event

pytestmark = pytest.mark.django_db(transaction=True)
NOW = dt.datetime.now(dt.UTC).replace(minute=30, second=0, microsecond=0)
NO_LAG = dt.timedelta(0)


def ev(
    key, n: int, *, at: dt.datetime, model: str = "m1", status: int = 200, cost: str = "0.001"
) -> UsageEvent:
    return usage_event(key, n, at=at, model=model, cost=cost, status=status, tokens_per_n=10)


def snapshot() -> list[tuple]:
    return sorted(
        UsageRollup.objects.values_list(
            "granularity",
            "bucket_start",
            "tenant_id",
            "key_id",
            "model",
            "provider",
            "requests",
            "errors",
            "prompt_tokens",
            "completion_tokens",
            "cost_usd",
        )
    )


@pytest.fixture
def keys(make_key):
    return make_key("acme", name="a"), make_key("globex", name="b")


def test_hour_and_day_rollups_are_exact_and_idempotent(keys):
    a, b = keys
    h0, h1 = NOW - dt.timedelta(hours=2), NOW - dt.timedelta(hours=1)
    write_events(
        [
            ev(a, 1, at=h0),
            ev(a, 2, at=h0, status=500),
            ev(a, 3, at=h1, model="m2"),
            ev(b, 4, at=h1, cost="0.5"),
        ]
    )
    result = usage_rollup(lag=NO_LAG)
    assert (result.hours, result.days) == (2, len({h0.date(), h1.date()}))  # each hour once
    hours = UsageRollup.objects.filter(granularity="hour")
    trunc = lambda t: t.replace(minute=0)  # noqa: E731
    assert sorted(
        hours.values_list("bucket_start", "tenant_id", "model", "requests", "errors", "prompt_tokens")
    ) == sorted(
        [
            (trunc(h0), a.tenant.pk, "m1", 2, 1, 30),
            (trunc(h1), a.tenant.pk, "m2", 1, 0, 30),
            (trunc(h1), b.tenant.pk, "m1", 1, 0, 40),
        ]
    )
    day = lambda t: t.replace(hour=0, minute=0)  # noqa: E731
    # One row per day, tenant, key, model and provider (h0 and h1 may fall on different days).
    assert [row[1:] for row in snapshot() if row[0] == "day"] == sorted(
        [
            (day(h0), a.tenant.pk, a.key_id, "m1", "prov", 2, 1, 30, 3, Decimal("0.002")),
            (day(h1), a.tenant.pk, a.key_id, "m2", "prov", 1, 0, 30, 3, Decimal("0.001")),
            (day(h1), b.tenant.pk, b.key_id, "m1", "prov", 1, 0, 40, 4, Decimal("0.5")),
        ]
    )

    before = snapshot()
    usage_rollup(lag=NO_LAG)
    usage_rollup(lag=NO_LAG)
    assert snapshot() == before


def test_a_late_event_is_counted_in_its_hour_and_day(keys):
    a, _ = keys
    old = NOW - dt.timedelta(hours=5)
    write_events([ev(a, 1, at=old)])
    usage_rollup(lag=NO_LAG)
    write_events([ev(a, 1, at=NOW)])  # a fence: a recent one
    write_events([ev(a, 2, at=old)])  # arrives late (a spool replayed, a claimed outbox entry)
    usage_rollup(lag=NO_LAG)
    hour = UsageRollup.objects.get(granularity="hour", bucket_start=old.replace(minute=0))
    assert (hour.requests, hour.prompt_tokens, hour.cost_usd) == (2, 30, Decimal("0.002"))
    day_total = sum(r.requests for r in UsageRollup.objects.filter(granularity="day"))
    assert day_total == 3


def test_reports_include_records_not_yet_rolled_up_and_never_another_tenant(keys):
    a, b = keys
    write_events([ev(a, 1, at=NOW - dt.timedelta(hours=1)), ev(b, 9, at=NOW)])
    usage_rollup(lag=NO_LAG)
    write_events([ev(a, 2, at=NOW), ev(a, 3, at=NOW, model="m2")])  # not rolled up yet
    scope = Scope(tenant_id=a.tenant.pk, start=NOW.date() - dt.timedelta(days=1), end=NOW.date())
    summary = usage_summary(scope)
    assert (summary.requests, summary.prompt_tokens, summary.completion_tokens) == (3, 60, 6)
    assert summary.cost_usd == Decimal("0.003")
    by_model = {r.group["model"]: r.requests for r in usage_report(scope, group_by="model")}
    assert by_model == {"m1": 2, "m2": 1}
    usage_rollup(lag=NO_LAG)
    assert usage_summary(scope).requests == 3  # same answer once rolled up: nothing counted twice
    everyone = Scope(tenant_id=None, start=scope.start, end=scope.end)
    assert usage_summary(everyone).requests == 4


def test_retention_deletes_old_raw_records_in_batches_and_keeps_rollups(keys):
    a, _ = keys
    old = NOW - dt.timedelta(days=100)
    write_events([ev(a, n, at=old) for n in range(1, 6)] + [ev(a, 9, at=NOW)])
    usage_rollup(lag=NO_LAG)
    write_events([ev(a, 7, at=old - dt.timedelta(hours=1))])  # old, but not rolled up yet
    kept_rollups = snapshot()

    deleted = usage_purge(cutoff=NOW - dt.timedelta(days=90), batch_size=2)

    assert deleted == 5
    assert sorted(UsageRecord.objects.values_list("prompt_tokens", flat=True)) == [70, 90]
    assert snapshot() == kept_rollups
    # Hours before the cutoff are not recomputed from the now partial raw records; the one
    # record of such an hour not rolled up yet is added to its rollups (and deleted).
    result = usage_rollup(lag=NO_LAG, retention_cutoff=NOW - dt.timedelta(days=90))
    assert (result.hours, result.folded) == (1, 1)  # NOW's hour is recomputed (the overlap), unchanged
    assert sorted(UsageRecord.objects.values_list("prompt_tokens", flat=True)) == [90]
    late_hour = (old - dt.timedelta(hours=1)).replace(minute=0)
    added = sorted(set(snapshot()) - set(kept_rollups))
    # its day: the day of the five rolled-up records (now six), or the day before (now one)
    day = ("day", late_hour.replace(hour=0), *((6, 220) if late_hour.day == old.day else (1, 70)))
    assert [(row[0], row[1], row[6], row[8]) for row in added] == [day, ("hour", late_hour, 1, 70)]


def test_a_record_later_than_the_retention_is_folded_into_its_rollups_exactly_once(keys):
    a, b = keys
    old = NOW - dt.timedelta(days=100)
    cutoff = NOW - dt.timedelta(days=90)
    write_events([ev(a, 1, at=old), ev(a, 2, at=old, cost="0.0000015")])
    usage_rollup(lag=NO_LAG)  # rolled up while recent
    assert usage_purge(cutoff=cutoff) == 2
    before = snapshot()
    late = [ev(a, 3, at=old + dt.timedelta(minutes=1)), ev(b, 4, at=old - dt.timedelta(days=1))]
    write_events(late)  # a spool replayed a hundred days late

    result = usage_rollup(lag=NO_LAG, retention_cutoff=cutoff)

    assert (result.hours, result.folded) == (0, 2)
    assert UsageRecord.objects.count() == 0
    hour = old.replace(minute=0)
    rows = {
        (g, start, key_id): (requests, prompt, completion, cost, micro)
        for g, start, key_id, requests, prompt, completion, cost, micro in UsageRollup.objects.values_list(
            "granularity",
            "bucket_start",
            "key_id",
            "requests",
            "prompt_tokens",
            "completion_tokens",
            "cost_usd",
            "cost_micro",
        )
    }
    cost = Decimal("0.001") * 2 + Decimal("0.0000015")
    assert rows == {
        ("hour", hour, a.key_id): (3, 60, 6, cost, 2_002),
        ("day", hour.replace(hour=0), a.key_id): (3, 60, 6, cost, 2_002),
        ("hour", hour - dt.timedelta(days=1), b.key_id): (1, 40, 4, Decimal("0.001"), 1_000),
        ("day", hour.replace(hour=0) - dt.timedelta(days=1), b.key_id): (1, 40, 4, Decimal("0.001"), 1_000),
    }
    assert len(before) == 2
    again = usage_rollup(lag=NO_LAG, retention_cutoff=cutoff)
    assert (again.hours, again.folded) == (0, 0)
    assert UsageRollup.objects.count() == 4


def test_the_periodic_tasks_run_eagerly_without_a_broker_and_are_scheduled(keys, settings):
    from accounting.tasks import purge_usage, reconcile_quotas, rollup_usage

    a, _ = keys
    write_events([ev(a, 1, at=NOW - dt.timedelta(days=200))])
    UsageRecord.objects.update(ingested_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=10))  # past LAG
    assert settings.CELERY_TASK_ALWAYS_EAGER
    rollup_usage.delay()
    # its hour is past the retention: the record is added to its hour and day, and deleted
    assert sorted(UsageRollup.objects.values_list("granularity", "requests")) == [("day", 1), ("hour", 1)]
    assert UsageRecord.objects.count() == 0
    purge_usage.delay()
    assert UsageRollup.objects.count() == 2
    reconcile_quotas.delay()
    assert {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()} == {
        "accounting.tasks.drain_usage_outbox",
        "accounting.tasks.rollup_usage",
        "accounting.tasks.purge_usage",
        "accounting.tasks.reconcile_quotas",
        "accounting.tasks.forget_idle_consumers",
        "accounting.tasks.prepare_usage_partitions",
        "stored_responses.tasks.purge_responses",
        "accounting.tasks.purge_request_content",
    }
