"""The usage writer against the real database: batches, exactly-once, shutdown drain, spool replay."""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import os
import time
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from accounting import recorder
from accounting.models import UsageRecord
from accounting.recorder import UsageEvent, UsageWriter, write_events
from tests.accounting.events import usage_event
from tests.conftest import wait_for

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


def lock_waiters(path: Path) -> int:
    """How many ``flock`` calls wait for the lock on ``path``: Linux's ``/proc/locks`` lists
    each blocked request as ``N: -> FLOCK ADVISORY WRITE <pid> <major>:<minor>:<inode> ...``."""
    stat = path.stat()
    file_id = f"{os.major(stat.st_dev):02x}:{os.minor(stat.st_dev):02x}:{stat.st_ino}"
    blocked = [line.split() for line in Path("/proc/locks").read_text().splitlines() if " -> " in line]
    return sum(1 for fields in blocked if fields[2] == "FLOCK" and fields[6] == file_id)


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
    # The writer's thread may hold some of them in its batch: closing joins it, batch written.
    writer.close()
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


def test_a_spool_line_cut_short_is_set_aside_and_the_writer_goes_on(tmp_path, make_key):
    key = make_key()
    spool = tmp_path / "spool.jsonl"
    good = orjson.loads(
        orjson.dumps(dataclasses.asdict(event("req_s0", key.tenant.pk, key.key_id)), default=str)
    )
    newer = orjson.dumps({**good, "request_id": "req_s1", "field_of_a_newer_version": 1})
    cut = orjson.dumps({**good, "request_id": "req_cut"})[:50]  # a process killed mid-append
    spool.write_bytes(orjson.dumps(good) + b"\n" + newer + b"\n" + cut)
    writer = UsageWriter(flush_seconds=0.05, batch_size=100, spool_path=spool)
    try:
        writer.record(event("req_new", key.tenant.pk, key.key_id))
        wait_for(lambda: UsageRecord.objects.count() == 3)
        writer.record(event("req_later", key.tenant.pk, key.key_id))  # the writer thread still runs
        wait_for(lambda: UsageRecord.objects.count() == 4)
    finally:
        writer.close()
    assert sorted(UsageRecord.objects.values_list("request_id", flat=True)) == [
        "req_later",
        "req_new",
        "req_s0",
        "req_s1",
    ]
    assert not spool.exists()
    assert (tmp_path / "spool.jsonl.rejected").read_bytes() == cut + b"\n"


def test_an_event_the_database_refuses_is_logged_and_does_not_stop_the_ledger(
    writer, make_key, caplog, tmp_path
):
    key = make_key()
    writer.record(event("req_negative", key.tenant.pk, key.key_id, prompt_tokens=-1))
    writer.record(event("req_huge", key.tenant.pk, key.key_id, completion_tokens=2**31))
    writer.record(event("req_ok", key.tenant.pk, key.key_id))
    writer.flush()
    writer.record(event("req_next", key.tenant.pk, key.key_id))
    writer.flush()
    assert sorted(UsageRecord.objects.values_list("request_id", flat=True)) == ["req_next", "req_ok"]
    refused = [r.getMessage() for r in caplog.records if "refused by the database" in r.getMessage()]
    assert len(refused) == 2
    assert '"request_id":"req_negative"' in refused[0] and '"prompt_tokens":-1' in refused[0]
    assert '"request_id":"req_huge"' in refused[1] and f'"completion_tokens":{2**31}' in refused[1]
    assert not (tmp_path / "spool.jsonl").exists()


def test_the_spool_is_only_touched_under_its_lock_shared_by_every_worker(tmp_path, make_key):
    key = make_key()
    spool = tmp_path / "spool.jsonl"
    spool.write_bytes(
        orjson.dumps(dataclasses.asdict(event("req_spooled", key.tenant.pk, key.key_id)), default=str) + b"\n"
    )
    writer = UsageWriter(flush_seconds=0.05, batch_size=100, spool_path=spool)
    try:
        # Another worker holds the lock (appending, or replaying): this one's replay waits.
        with (tmp_path / "spool.jsonl.lock").open("a+b") as other:
            fcntl.flock(other, fcntl.LOCK_EX)
            writer.record(event("req_new", key.tenant.pk, key.key_id))
            wait_for(lambda: lock_waiters(tmp_path / "spool.jsonl.lock") == 1)  # the writer's replay
            assert UsageRecord.objects.count() == 0
            assert spool.exists()
            fcntl.flock(other, fcntl.LOCK_UN)
        wait_for(lambda: UsageRecord.objects.count() == 2)
        assert sorted(UsageRecord.objects.values_list("request_id", flat=True)) == ["req_new", "req_spooled"]
        assert not spool.exists()
    finally:
        writer.close()


def test_a_batch_is_converted_in_slices_that_let_other_threads_take_the_interpreter_lock(
    monkeypatch, make_key
):
    """Storing a batch gives the lock up every 8 items of each conversion loop (records, then
    insert rows), so a gateway's event loop never waits a whole batch for it."""
    key = make_key()
    at = dt.datetime(2026, 12, 6, 12, tzinfo=dt.UTC)
    events = [usage_event(key, n, at=at, model="m", cost="0.001") for n in range(100)]
    yields: list[float] = []
    monkeypatch.setattr(recorder.time, "sleep", yields.append)

    write_events(events)

    assert yields == [0] * 24  # before items 8, 16, ..., 96 of both loops
    assert UsageRecord.objects.count() == 100
    assert list(recorder.sliced(list(range(8)))) == list(range(8))
    assert len(yields) == 24  # 8 items: one slice, no yield
