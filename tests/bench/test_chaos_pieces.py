"""The chaos profile's pieces (``python -m bench --only chaos`` itself is long and not run here):
the owned Redis keeps its data across a hang and a restart, the owned PostgreSQL comes back
after a stop, the upstream answers JSON and SSE with usage and comes back on its port after a
SIGKILL, the load generator classifies and aborts as it says, and the ledger check finds each
kind of loss."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import redis

from bench.chaos_load import Load, Sent, outcomes
from bench.chaos_state import Record
from bench.chaos_upstream import ChaosUpstream
from bench.chaos_verdict import check_ledger
from bench.payloads import STREAM_CONTENT_CHUNKS, chat_request
from bench.postgres_cluster import OwnedPostgres
from bench.redis_server import OwnedRedis


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[ChaosUpstream]:
    server = ChaosUpstream(log_dir=tmp_path)
    server.start()
    yield server
    server.stop()


def test_the_upstream_answers_json_and_streams_with_usage_and_comes_back_after_a_kill(upstream):
    body = httpx.post(upstream.chat_url, content=chat_request("m"), timeout=5).json()
    assert body["usage"] == {"prompt_tokens": 19, "completion_tokens": 7, "total_tokens": 26}
    events = httpx.post(upstream.chat_url, content=chat_request("m", stream=True), timeout=5).text.split(
        "\n\n"
    )
    assert events[-2:] == ["data: [DONE]", ""]
    assert '"usage":{"prompt_tokens":19,"completion_tokens":20,"total_tokens":39}' in events[-3]
    assert sum('"content"' in e for e in events) == STREAM_CONTENT_CHUNKS

    upstream.kill()
    with pytest.raises(httpx.ConnectError):
        httpx.post(upstream.chat_url, content=chat_request("m"), timeout=2)
    port = upstream.port
    upstream.start()
    assert upstream.port == port
    assert httpx.post(upstream.chat_url, content=chat_request("m"), timeout=5).status_code == 200


def test_the_owned_redis_keeps_its_data_through_a_hang_and_a_restart(tmp_path):
    server = OwnedRedis(parent=tmp_path).start()
    try:
        with server.client() as client:
            client.set("kept", "1")
        server.hang()
        with server.client(timeout=0.3) as client, pytest.raises(redis.TimeoutError):
            client.ping()
        server.resume()
        assert server.answers()
        server.restart()
        with server.client() as client:
            assert client.get("kept") == b"1"
        assert server.starts == 2
    finally:
        server.destroy()
    assert not server.dir.exists()


def test_the_owned_postgres_comes_back_after_a_stop():
    cluster = OwnedPostgres().init("chaos_smoke")
    try:
        with psycopg.connect(cluster.url("chaos_smoke"), autocommit=True) as conn:
            conn.execute("CREATE TABLE t (v int)")
            conn.execute("INSERT INTO t VALUES (7)")
        cluster.stop()
        assert not cluster.running()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(cluster.url("chaos_smoke"), connect_timeout=2)
        cluster.start()
        with psycopg.connect(cluster.url("chaos_smoke")) as conn:
            assert conn.execute("SELECT v FROM t").fetchall() == [(7,)]
    finally:
        cluster.destroy()
    assert not cluster.base.exists()


def test_the_load_sends_its_own_ids_aborts_every_other_stream_and_bursts(upstream):
    load = Load(url=upstream.chat_url, key="k", model="m", concurrency=4, run_id="smoke")
    load.start()
    try:
        first = load.probe(streamed=True)
        assert (first.client_id, first.outcome, first.content_chunks) == ("smoke-0000001", "200", 20)
        load.abort_streams = True
        load.run_steady()
        load.phase = "aborts"
        burst = load.burst(100)
        load.quiet()
    finally:
        load.close()
    assert outcomes(burst) == {"200": 100}
    steady = [s for s in load.sent if s.phase == "aborts" and not s.burst]
    aborted = [s for s in steady if s.aborted]
    assert aborted and all(s.streamed and s.content_chunks == 3 for s in aborted)
    assert all(s.outcome == "200" for s in steady if not s.streamed)
    assert len({s.client_id for s in load.sent}) == len(load.sent)


def _sent(number: int, *, status: int | None, **fields: object) -> Sent:
    """Request ``c<number>``, sent at 100 + number and ended a second later."""
    start = 100.0 + number
    return Sent(f"c{number}", "steady", False, started=start, ended=start + 1, status=status, **fields)


def _record(client_id: str, *, request_id: str = "") -> Record:
    return Record(request_id or f"req_{client_id}", client_id, 200, False, 19, 7, 8, "", False, False)


def test_the_ledger_check_names_each_kind_of_loss():
    sent = [
        _sent(1, status=200, completed=True),  # recorded once
        _sent(2, status=200, completed=True),  # missing
        _sent(3, status=502),  # recorded twice
        _sent(4, status=503, error_code="overloaded"),  # refused, yet recorded
        _sent(5, status=503, error_code="no_deployment_available"),  # refused before admission: no record
        _sent(6, status=503, error_code="no_deployment_available", rate_headers=True),  # admitted: missing
        _sent(7, status=200, transport_error="ServerDisconnectedError"),  # cut by the kill at 107.5
        _sent(8, status=None, transport_error="ClientConnectorError"),  # no answer, recorded
        _sent(9, status=200, aborted=True),  # client abort: owed a record
    ]
    records = [
        _record("c1"),
        _record("c3", request_id="req_a"),
        _record("c3", request_id="req_b"),
        _record("c4"),
        _record("c8"),
    ]
    records += [_record("c9"), _record("stranger")]
    check = check_ledger(sent, records=records, kill_times=[107.5])
    assert (check.sent, check.answered, check.recorded_once) == (9, 5, 2)
    assert (check.missing, check.duplicates) == (["c2", "c6"], ["c3"])
    assert (check.refused_recorded, check.unknown) == (["c4"], ["req_stranger"])
    assert (check.cut_by_kill, check.cut_by_kill_recorded) == (1, 0)
    assert (check.unanswered, check.unanswered_recorded) == (1, 1)
    assert not check.ok


def test_a_ledger_with_every_answered_request_recorded_once_is_ok():
    sent = [
        _sent(1, status=200, completed=True),
        _sent(2, status=429),
        _sent(3, status=None, transport_error="ClientOSError"),
    ]
    check = check_ledger(sent, records=[_record("c1")], kill_times=[])
    assert check.ok
    assert (check.answered, check.recorded_once, check.unanswered, check.unanswered_recorded) == (1, 1, 1, 0)
