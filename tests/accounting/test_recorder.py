"""The usage writer against the real database: batches, exactly-once, shutdown drain, spool replay."""

from __future__ import annotations

import dataclasses
import time
from decimal import Decimal

import orjson
import pytest

from accounting.models import UsageRecord
from accounting.recorder import UsageEvent, UsageWriter

pytestmark = pytest.mark.django_db(transaction=True)


def event(request_id: str, tenant_id: int, key_id: int, **changes) -> UsageEvent:
    base = UsageEvent(
        request_id=request_id,
        client_request_id="",
        created_at=time.time(),
        tenant_id=tenant_id,
        tenant_name="acme",
        key_id=key_id,
        key_prefix="sk-gw-abcdef",
        model="gpt-4o-mini",
        status=200,
        latency_ms=12.5,
        prompt_tokens=10,
        completion_tokens=5,
        cost_usd=Decimal("0.0000045"),
    )
    return dataclasses.replace(base, **changes)


@pytest.fixture
def writer(tmp_path):
    writer = UsageWriter(flush_seconds=0.05, batch_size=100, spool_path=tmp_path / "spool.jsonl")
    yield writer
    writer.close()


def test_duplicate_request_ids_are_recorded_once(writer, make_key):
    key = make_key()
    for _ in range(3):
        writer.record(event("req_a", key.tenant.pk, key.key_id))
    writer.record(event("req_b", key.tenant.pk, key.key_id, status=502, error_type="upstream_error"))
    writer.flush()
    time.sleep(0.2)
    writer.flush()
    rows = {r.request_id: r for r in UsageRecord.objects.all()}
    assert sorted(rows) == ["req_a", "req_b"]
    assert rows["req_a"].cost_usd == Decimal("0.0000045")
    assert (rows["req_b"].status, rows["req_b"].error_type) == (502, "upstream_error")


def test_close_drains_everything_queued(tmp_path, make_key):
    key = make_key()
    writer = UsageWriter(flush_seconds=30, batch_size=10_000, spool_path=tmp_path / "spool.jsonl")
    for i in range(250):
        writer.record(event(f"req_{i}", key.tenant.pk, key.key_id))
    writer.close()
    assert UsageRecord.objects.count() == 250


def test_usage_of_a_deleted_tenant_is_kept_without_the_link(writer, make_key):
    key = make_key()
    writer.record(event("req_gone", 987654, 123456))
    writer.record(event("req_ok", key.tenant.pk, key.key_id))
    writer.flush()
    gone = UsageRecord.objects.get(request_id="req_gone")
    assert (gone.tenant_id, gone.key_id, gone.tenant_name) == (None, None, "acme")
    assert UsageRecord.objects.get(request_id="req_ok").tenant_id == key.tenant.pk


def test_spooled_events_are_replayed_once_the_database_answers(tmp_path, make_key):
    key = make_key()
    spool = tmp_path / "spool.jsonl"
    lines = [
        orjson.dumps(dataclasses.asdict(event(f"req_s{i}", key.tenant.pk, key.key_id)), default=str)
        for i in range(3)
    ]
    spool.write_bytes(b"\n".join(lines) + b"\n")
    writer = UsageWriter(flush_seconds=0.05, batch_size=100, spool_path=spool)
    writer.record(event("req_new", key.tenant.pk, key.key_id))
    writer.close()
    assert sorted(UsageRecord.objects.values_list("request_id", flat=True)) == [
        "req_new",
        "req_s0",
        "req_s1",
        "req_s2",
    ]
    assert not spool.exists()
