"""``InProcessBeat``: the beat schedule run in a thread of the process (no broker), each task's
runs kept for ``/health``; a task that raises, or one that is not registered, is reported and
keeps its schedule while the others run on."""

from __future__ import annotations

import json
import logging
import threading

import pytest
import redis
from celery import shared_task
from django.conf import settings as django_settings

from gateway_site.runtime.periodic import InProcessBeat, celery_report
from tests.conftest import redis_url, wait_for


def _counter_key() -> str:
    return f"{django_settings.GATEWAY_REDIS_PREFIX}periodic-count"


@shared_task(name="tests.periodic.count")
def count_run() -> int:
    """Counts its runs in Redis, where the test reads them."""
    client = redis.Redis.from_url(django_settings.REDIS_URL, socket_timeout=5)
    try:
        return int(client.incr(_counter_key()))
    finally:
        client.close()


@shared_task(name="tests.periodic.broken")
def broken() -> None:
    raise RuntimeError("the secret-looking detail that /health must not show")


SCHEDULE = {
    "count": {"task": "tests.periodic.count", "schedule": 0.2},
    "broken": {"task": "tests.periodic.broken", "schedule": 0.2},
    "missing": {"task": "tests.periodic.not_registered", "schedule": 0.2},
    "drain": {"task": "accounting.tasks.drain_usage_outbox", "schedule": 1.0},
}


@pytest.fixture
def counter(settings, redis_prefix):
    settings.REDIS_URL = redis_url()
    settings.GATEWAY_REDIS_PREFIX = redis_prefix
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5)
    yield lambda: int(client.get(_counter_key()) or 0)
    client.close()


def test_every_task_runs_at_its_interval_and_failures_keep_their_schedule(counter, caplog):
    caplog.set_level(logging.ERROR, logger="gateway_site.runtime.periodic")
    before = set(threading.enumerate())
    beat = InProcessBeat(SCHEDULE, delegated={"drain": "usage-outbox thread"})
    [thread] = [t for t in threading.enumerate() if t not in before and t.name == "in-process-beat"]
    try:
        fresh = beat.report()["tasks"]
        assert (fresh["count"]["runs"], fresh["count"]["last_run_at"], fresh["count"]["last_status"]) == (
            0,
            None,
            None,
        )
        wait_for(lambda: beat.report()["tasks"]["broken"]["runs"] >= 3 and counter() >= 3, timeout=10)
    finally:
        beat.stop()
    report = beat.report()
    assert not thread.is_alive()  # stopped: its thread ended, so nothing runs any more
    assert beat.report() == report
    assert report["runs_in"] == "process"
    tasks = report["tasks"]
    assert tasks["count"]["runs"] == counter()
    assert (tasks["count"]["failures"], tasks["count"]["last_status"], tasks["count"]["last_error"]) == (
        0,
        "ok",
        None,
    )
    assert tasks["count"]["next_due_at"] > tasks["count"]["last_run_at"]
    assert tasks["broken"]["failures"] == tasks["broken"]["runs"] >= 3
    assert (tasks["broken"]["last_status"], tasks["broken"]["last_error"]) == ("failed", "RuntimeError")
    assert tasks["missing"]["failures"] == tasks["missing"]["runs"] >= 1
    assert (tasks["missing"]["last_status"], tasks["missing"]["last_error"]) == ("failed", "NotRegistered")
    assert tasks["drain"] == {
        "task": "accounting.tasks.drain_usage_outbox",
        "every_seconds": 1.0,
        "runs_in": "usage-outbox thread",
    }
    assert "secret-looking" not in json.dumps(report)
    failed = [
        r for r in caplog.records if r.getMessage() == "periodic task broken (tests.periodic.broken) failed"
    ]
    assert len(failed) == tasks["broken"]["runs"]
    assert all(r.exc_info and r.exc_info[0] is RuntimeError for r in failed)


def test_with_a_broker_health_names_the_schedule_that_celery_beat_runs(settings):
    assert celery_report(settings.CELERY_BEAT_SCHEDULE) == {
        "runs_in": "celery",
        "tasks": {
            "drain-usage-outbox": {"task": "accounting.tasks.drain_usage_outbox", "every_seconds": 1.0},
            "rollup-usage": {"task": "accounting.tasks.rollup_usage", "every_seconds": 60.0},
            "purge-usage": {"task": "accounting.tasks.purge_usage", "every_seconds": 3600.0},
            "reconcile-quotas": {"task": "accounting.tasks.reconcile_quotas", "every_seconds": 300.0},
            "prepare-usage-partitions": {
                "task": "accounting.tasks.prepare_usage_partitions",
                "every_seconds": 3600.0,
            },
            "forget-idle-consumers": {
                "task": "accounting.tasks.forget_idle_consumers",
                "every_seconds": 3600.0,
            },
            "purge-responses": {"task": "stored_responses.tasks.purge_responses", "every_seconds": 3600.0},
            "purge-request-content": {
                "task": "accounting.tasks.purge_request_content",
                "every_seconds": 3600.0,
            },
        },
    }
