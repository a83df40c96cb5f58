"""Periodic work without a Celery broker, end to end: a gateway process runs every task of the
beat schedule itself (rollups, retention, quota reconciliation, forgetting idle outbox
consumers; with Redis its ``usage-outbox`` thread drains the outbox), a task that fails (a
table made unreachable) is reported by ``/health`` and the others keep running, and the
embedded default of ``make run`` (SQLite, no Redis) runs them all."""

from __future__ import annotations

import contextlib
import datetime as dt
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from django.conf import settings
from django.db import connection

from accounting.models import RollupState, UsageRecord, UsageRollup
from tests.conftest import ROOT, IssuedKey, mock_echo_yaml, redis_url, wait_for
from tests.e2e.conftest import quota_spend
from tests.e2e.test_serve import LISTENING

pytestmark = pytest.mark.e2e

# Every periodic task every second or less (the defaults are a minute to an hour).
SHORT_INTERVALS = {
    "GATEWAY_ROLLUP_SECONDS": "0.5",
    "GATEWAY_USAGE_PURGE_SECONDS": "1",
    "GATEWAY_RECONCILE_SECONDS": "1",
    "GATEWAY_USAGE_CONSUMER_FORGET_SECONDS": "1",
    "GATEWAY_USAGE_DRAIN_SECONDS": "0.5",
    "GATEWAY_RESPONSES_PURGE_SECONDS": "1",
    "GATEWAY_USAGE_PARTITION_SECONDS": "1",
    "GATEWAY_CONTENT_PURGE_SECONDS": "1",
}
FORGET = "forget-idle-consumers"
IN_PROCESS = (
    "rollup-usage",
    "purge-usage",
    "reconcile-quotas",
    FORGET,
    "purge-responses",
    "prepare-usage-partitions",
    "purge-request-content",
)
# 1000 and 2000 dollars per million tokens: a mock-echo answer (8 + 11 tokens) costs 3 cents.
PRICED_MOCK = mock_echo_yaml(input_per_million="1000", output_per_million="2000")
QUOTA = """
tenants:
  - name: acme
    quotas:
      - period: month
        limit_usd: "100"
"""


def _health(base: str) -> dict[str, Any]:
    response = httpx.get(f"{base}/health", timeout=5)
    assert response.status_code == 200
    return dict(response.json())


def _task(base: str, name: str) -> dict[str, Any]:
    return dict(_health(base)["periodic"]["tasks"][name])


def _chat(base: str, key: str, content: str = "count me") -> None:
    body = {"model": "mock-echo", "messages": [{"role": "user", "content": content}]}
    headers = {"Authorization": f"Bearer {key}"}
    response = httpx.post(f"{base}/v1/chat/completions", json=body, headers=headers, timeout=10)
    assert response.status_code == 200, response.text


def _rolled_up(key: IssuedKey) -> dict[str, int]:
    """The key's requests in its hour rollups and in its day rollups."""
    rows = UsageRollup.objects.filter(key_id=key.key_id).values_list("granularity", "requests")
    totals: dict[str, int] = {}
    for granularity, requests in rows:
        totals[granularity] = totals.get(granularity, 0) + requests
    return totals


def _old_record(now: dt.datetime) -> UsageRecord:
    """A record from 200 days ago that an earlier rollup run already counted: only the retention
    purge deletes it (a rollup run re-reads only records ingested since its previous run)."""
    RollupState.objects.update_or_create(pk=1, defaults={"rolled_through": now - dt.timedelta(minutes=30)})
    return UsageRecord.objects.create(
        request_id="req_old",
        created_at=now - dt.timedelta(days=200),
        ingested_at=now - dt.timedelta(hours=1),
        tenant_name="acme",
        key_prefix="sk-gw-old",
        model="mock-echo",
        provider="mock",
        upstream_model="mock-echo",
        status=200,
        latency_ms=120,
    )


def _quota_counters(prefix: str, tenant_id: int) -> tuple[redis.Redis, list[bytes]]:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5)
    keys = [k for k in client.scan_iter(match=f"{prefix}{{t{tenant_id}}}:q*") if not k.endswith(b":leases")]
    return client, keys


def _drop_quota_counters(prefix: str, tenant_id: int) -> int:
    client, keys = _quota_counters(prefix, tenant_id)
    with client:
        return int(client.delete(*keys)) if keys else 0


def _spent(prefix: str, tenant_id: int) -> int:
    """The tenant's one quota counter's ``spent``; 0 while there is none."""
    client, keys = _quota_counters(prefix, tenant_id)
    with client:
        return int(client.hget(keys[0], "spent") or 0) if keys else 0


@pytest.mark.django_db(transaction=True)
def test_every_periodic_task_runs_in_the_gateway_without_a_broker(
    gateway_factory, configure, make_key, redis_prefix
):
    redis_url()
    configure(PRICED_MOCK + QUOTA)
    key = make_key("acme")
    now = dt.datetime.now(dt.UTC)
    old = _old_record(now)
    gateway = gateway_factory(CELERY_BROKER_URL="", **SHORT_INTERVALS)
    for _ in range(3):
        _chat(gateway.base_url, key.raw)

    # the outbox drained into records (usage-outbox thread), then rolled up (rollup-usage)
    wait_for(lambda: UsageRecord.objects.filter(key_id=key.key_id).count() == 3, timeout=20)
    wait_for(lambda: _rolled_up(key) == {"hour": 3, "day": 3}, timeout=20)
    # retention (purge-usage): the old record is deleted, and was never added to a rollup
    wait_for(lambda: not UsageRecord.objects.filter(pk=old.pk).exists(), timeout=20)
    assert not UsageRollup.objects.filter(bucket_start__lt=now - dt.timedelta(days=100)).exists()
    # quota reconciliation (reconcile-quotas): a counter lost in Redis is rebuilt from the records
    spent = 3 * 30_000  # micro-dollars
    tenant_id = key.tenant.pk
    assert quota_spend(redis_prefix, quota_id=key.tenant.quotas.get().pk, tenant_id=tenant_id) == (spent, 0)
    assert _drop_quota_counters(redis_prefix, tenant_id) == 1
    wait_for(lambda: _spent(redis_prefix, tenant_id) == spent, timeout=20)

    periodic = _health(gateway.base_url)["periodic"]
    assert periodic["runs_in"] == "process"
    assert periodic["tasks"]["drain-usage-outbox"] == {
        "task": "accounting.tasks.drain_usage_outbox",
        "every_seconds": 0.5,
        "runs_in": "usage-outbox thread",
    }
    for name in IN_PROCESS:
        task = periodic["tasks"][name]
        assert task["runs"] >= 1, name
        assert (task["failures"], task["last_status"], task["last_error"]) == (0, "ok", None), name
        assert task["next_due_at"] > task["last_run_at"], name
    assert "failed" not in gateway.log()


@contextlib.contextmanager
def _rollups_unreachable() -> Iterator[None]:
    """The rollups table made unreachable for the gateway (renamed) while the block runs."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE accounting_usagerollup RENAME TO accounting_usagerollup_away")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE accounting_usagerollup_away RENAME TO accounting_usagerollup")


@pytest.mark.django_db(transaction=True)
def test_a_failing_periodic_task_is_reported_and_the_others_keep_running(
    gateway_factory, configure, make_key
):
    redis_url()
    configure(PRICED_MOCK + QUOTA)  # the reconciliation reads the rollups of the quota's period
    key = make_key("acme")
    gateway = gateway_factory(CELERY_BROKER_URL="", **SHORT_INTERVALS)
    wait_for(lambda: _task(gateway.base_url, "rollup-usage")["last_status"] == "ok", timeout=20)

    with _rollups_unreachable():
        for _ in range(2):  # work for the rollup (a run with no new records reads no rollup)
            _chat(gateway.base_url, key.raw)
        wait_for(lambda: UsageRecord.objects.filter(key_id=key.key_id).count() == 2, timeout=20)  # drained
        wait_for(lambda: _task(gateway.base_url, "rollup-usage")["failures"] >= 2, timeout=20)
        forgotten = _task(gateway.base_url, FORGET)["runs"]
        wait_for(lambda: _task(gateway.base_url, FORGET)["runs"] >= forgotten + 2, timeout=20)
        health = _health(gateway.base_url)
    for name in ("rollup-usage", "purge-usage", "reconcile-quotas"):  # each reads the rollups
        task = health["periodic"]["tasks"][name]
        assert (task["last_status"], task["last_error"]) == ("failed", "ProgrammingError"), name
    forget = health["periodic"]["tasks"][FORGET]
    assert (forget["failures"], forget["last_status"]) == (0, "ok")
    assert "usagerollup" not in str(health)  # the database's message stays in the log
    log = gateway.log()
    failed = "periodic task rollup-usage (accounting.tasks.rollup_usage) failed"
    assert f"ERROR gateway_site.runtime.periodic {failed}" in log
    assert 'relation "accounting_usagerollup" does not exist' in gateway.log()

    # the table back: the same schedule succeeds again, and rolls up what was recorded meanwhile
    wait_for(lambda: _task(gateway.base_url, "rollup-usage")["last_status"] == "ok", timeout=20)
    wait_for(lambda: _rolled_up(key) == {"hour": 2, "day": 2}, timeout=20)


def test_the_embedded_default_runs_every_periodic_task(tmp_path, telemetry_outputs):
    """What ``make run`` starts: SQLite under the data directory, no Redis, no broker."""
    env = {
        "PATH": "/usr/bin:/bin",
        "GATEWAY_DATA_DIR": str(tmp_path / "var"),
        "PYTHONUNBUFFERED": "1",
        **SHORT_INTERVALS,
    }
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=120)
    demo = subprocess.run(
        [*manage, "setupdemo"], cwd=ROOT, env=env, check=True, timeout=60, capture_output=True, text=True
    )
    key = demo.stdout.splitlines()[-1].strip()
    log_path = tmp_path / "serve.log"
    telemetry_outputs.log_paths.append(log_path)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*manage, "serve", "--port", "0"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        base = "http://127.0.0.1:" + wait_for(
            lambda: LISTENING.search(log_path.read_text()), timeout=30
        ).group(1)
        wait_for(lambda: _answers(base), timeout=30)
        for _ in range(2):
            _chat(base, key)
        database = tmp_path / "var" / "gateway.sqlite3"
        wait_for(lambda: _sqlite_rollups(database) == [("day", 2), ("hour", 2)], timeout=20)
        for name in ("drain-usage-outbox", *IN_PROCESS):
            wait_for(lambda name=name: _task(base, name)["runs"] >= 1, timeout=20)
        periodic = _health(base)["periodic"]
        assert periodic["runs_in"] == "process"
        assert {name: (t["failures"], t["last_status"]) for name, t in periodic["tasks"].items()} == {
            name: (0, "ok") for name in ("drain-usage-outbox", *IN_PROCESS)
        }
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    assert "NotRegistered" not in log_path.read_text()


def _answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/live", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _sqlite_rollups(database: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(database, timeout=10) as db:
        rows = db.execute(
            "SELECT granularity, SUM(requests) FROM accounting_usagerollup"
            " GROUP BY granularity ORDER BY granularity"
        )
        return [(str(g), int(r)) for g, r in rows]
