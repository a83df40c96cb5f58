"""The usage ledger across a PostgreSQL outage, on a cluster of the test's own (the shared server
is never stopped): the gateway keeps answering from its in-process snapshot; without Redis the
usage writer spools every event to its local file and replays it once the database is back,
with no further request (the idle retry, every ``SPOOL_RETRY_SECONDS``) or before the next
batch, also when the process that spooled them was stopped during the outage; with Redis the
events wait in the outbox stream and are drained once the database answers. Each request is
recorded exactly once, with the upstream's token counts."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import psycopg
import pytest
import redis
from django.conf import settings

from accounting.outbox import outbox_stream
from accounting.recorder import SPOOL_RETRY_SECONDS
from tests.conftest import ROOT, GatewayProcess, openai_provider_yaml, start_gateway, wait_for
from tests.e2e.conftest import MODEL, PROVIDER, UPSTREAM_KEY_ENV
from tests.e2e.postgres_cluster import PostgresCluster
from tests.e2e.test_limits_redis_outage import RedisServer
from tests.fakes.openai_upstream import FakeOpenAIUpstream, FakeUsage, Reply

pytestmark = pytest.mark.e2e

DATABASE = "gw_outage"
# The idle retry's period, plus a gateway's start and a batch's write.
REPLAY_WAIT = SPOOL_RETRY_SECONDS + 5.0


@dataclass
class Ledger:
    """The private cluster, configured with MODEL on the fake upstream and a key of tenant acme."""

    cluster: PostgresCluster
    upstream: FakeOpenAIUpstream
    raw_key: str
    data_dir: Path

    @property
    def url(self) -> str:
        return self.cluster.url(DATABASE)

    def usage(self) -> dict[str, tuple[int, int]]:
        """(prompt, completion) tokens by request id."""
        with psycopg.connect(self.url, connect_timeout=5) as conn:
            rows = conn.execute(
                "SELECT request_id, prompt_tokens, completion_tokens FROM accounting_usagerecord"
            ).fetchall()
        return {request_id: (prompt, completion) for request_id, prompt, completion in rows}

    def row_count(self) -> int:
        with psycopg.connect(self.url, connect_timeout=5) as conn:
            row = conn.execute("SELECT count(*) FROM accounting_usagerecord").fetchone()
        assert row is not None
        return int(row[0])


def manage(database_url: str, data_dir: Path, *args: str) -> str:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": "",
        "SECRET_KEY": settings.SECRET_KEY,
        "GATEWAY_DATA_DIR": str(data_dir),
    }
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"manage.py {' '.join(args)}:\n{done.stdout}{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def private_ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    data_dir = tmp_path_factory.mktemp("manage")
    upstream = FakeOpenAIUpstream().start()
    cluster = PostgresCluster()
    try:
        cluster.init(DATABASE)
        url = cluster.url(DATABASE)
        manage(url, data_dir, "migrate", "-v", "0")
        config = data_dir / "gateway.yaml"
        config.write_text(
            openai_provider_yaml(
                name=PROVIDER, base_url=upstream.base_url, model=MODEL, api_key_env=UPSTREAM_KEY_ENV
            )
            + "tenants:\n  - name: acme\n"
        )
        manage(url, data_dir, "applyconfig", str(config))
        raw_key = manage(url, data_dir, "issuekey", "--tenant", "acme", "--name", "outage").strip()
        yield Ledger(cluster=cluster, upstream=upstream, raw_key=raw_key, data_dir=data_dir)
    finally:
        cluster.destroy()
        upstream.stop()


@pytest.fixture
def ledger(private_ledger: Ledger) -> Ledger:
    """The cluster running, with no usage record."""
    if not private_ledger.cluster.running():
        private_ledger.cluster.start()
    with psycopg.connect(private_ledger.url, connect_timeout=5) as conn:
        conn.execute("TRUNCATE accounting_usagerecord")
    return private_ledger


@pytest.fixture
def gateways(ledger: Ledger, tmp_path: Path, redis_prefix: str) -> Iterator:
    """``gateways(**env)``: a gateway on the private cluster, without Redis unless ``env`` sets
    REDIS_URL, spooling to ``tmp_path / "usage-spool.jsonl"``; all are stopped after the test."""
    started: list[GatewayProcess] = []

    def _start(**env: str) -> GatewayProcess:
        extra = {
            "DATABASE_URL": ledger.url,
            "REDIS_URL": "",
            "GATEWAY_USAGE_SPOOL_PATH": str(tmp_path / "usage-spool.jsonl"),
            UPSTREAM_KEY_ENV: "sk-upstream-pg-outage",
            **env,
        }
        gateway = start_gateway(tmp_path=tmp_path, redis_prefix=redis_prefix, extra_env=extra)
        started.append(gateway)
        return gateway

    yield _start
    for gateway in started:
        gateway.stop()


def send(ledger: Ledger, gateway: GatewayProcess, usages: list[FakeUsage]) -> dict[str, tuple[int, int]]:
    """One request per usage, each answered 200 with it; (prompt, completion) by request id."""
    ledger.upstream.enqueue(*(Reply(usage=usage) for usage in usages))
    sent = {}
    for usage in usages:
        response = httpx.post(
            f"{gateway.base_url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {ledger.raw_key}"},
            json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        body = response.json()["usage"]
        assert (body["prompt_tokens"], body["completion_tokens"]) == (
            usage.prompt_tokens,
            usage.completion_tokens,
        )
        sent[response.headers["x-request-id"]] = (usage.prompt_tokens, usage.completion_tokens)
    return sent


def spooled(spool: Path) -> dict[str, tuple[int, int]]:
    events = [orjson.loads(line) for line in spool.read_bytes().splitlines()]
    by_id = {e["request_id"]: (e["prompt_tokens"], e["completion_tokens"]) for e in events}
    assert len(by_id) == len(events)
    return by_id


def usages(first: int, count: int) -> list[FakeUsage]:
    return [FakeUsage(prompt_tokens=100 + i, completion_tokens=10 + i) for i in range(first, first + count)]


def test_no_usage_is_lost_while_postgres_is_down(ledger, gateways, tmp_path):
    spool = tmp_path / "usage-spool.jsonl"
    gateway = gateways()
    baseline = send(ledger, gateway, usages(0, 3))
    wait_for(lambda: ledger.row_count() == 3)
    assert ledger.usage() == baseline

    ledger.cluster.stop()
    during = send(ledger, gateway, usages(3, 4))  # keys and models come from the snapshot
    wait_for(lambda: spool.exists() and len(spool.read_bytes().splitlines()) == 4)
    assert spooled(spool) == during

    ledger.cluster.start()  # and no further request: the idle writer replays the spool
    wait_for(lambda: ledger.row_count() == 7, timeout=REPLAY_WAIT)
    assert ledger.usage() == baseline | during
    assert not spool.exists()

    after = send(ledger, gateway, usages(7, 1))
    wait_for(lambda: ledger.row_count() == 8)
    assert ledger.usage() == baseline | during | after
    assert not spool.exists()


def test_a_gateway_stopped_during_the_outage_leaves_its_spool_to_the_next(ledger, gateways, tmp_path):
    spool = tmp_path / "usage-spool.jsonl"
    # Events still queued at SIGTERM are spooled by the shutdown drain.
    first = gateways(GATEWAY_USAGE_FLUSH_SECONDS="30", GATEWAY_USAGE_BATCH_SIZE="1000")
    ledger.cluster.stop()
    during = send(ledger, first, usages(20, 3))
    assert not spool.exists()
    assert first.stop() in (0, -15)
    assert spooled(spool) == during

    ledger.cluster.start()
    after = send(ledger, gateways(), usages(23, 1))  # the next process's first batch replays it
    wait_for(lambda: ledger.row_count() == 4)
    assert ledger.usage() == during | after
    assert not spool.exists()


def test_with_redis_the_events_wait_in_the_outbox_while_postgres_is_down(
    ledger, gateways, tmp_path, redis_prefix
):
    own_redis = RedisServer().start()
    try:
        gateway = gateways(REDIS_URL=own_redis.url, GATEWAY_USAGE_CLAIM_IDLE_SECONDS="0.5")
        client = redis.Redis.from_url(own_redis.url, socket_timeout=2)
        baseline = send(ledger, gateway, usages(30, 2))
        wait_for(lambda: ledger.row_count() == 2)

        ledger.cluster.stop()
        during = send(ledger, gateway, usages(32, 3))
        wait_for(lambda: client.xlen(outbox_stream(redis_prefix)) == 3)
        assert not (tmp_path / "usage-spool.jsonl").exists()  # Redis took them: nothing spooled

        ledger.cluster.start()
        wait_for(lambda: ledger.row_count() == 5, timeout=REPLAY_WAIT)
        assert ledger.usage() == baseline | during
        wait_for(lambda: client.xlen(outbox_stream(redis_prefix)) == 0)
        client.close()
    finally:
        own_redis.stop()


def test_a_line_cut_short_in_the_spool_neither_swallows_nor_blocks_the_next_events(
    ledger, gateways, tmp_path
):
    spool = tmp_path / "usage-spool.jsonl"
    gateway = gateways()
    ledger.cluster.stop()
    before = send(ledger, gateway, usages(40, 1))
    wait_for(lambda: spool.exists() and len(spool.read_bytes().splitlines()) == 1)
    cut = b'{"request_id":"req_cut","client_req'  # a worker sharing the spool, killed mid-append
    with spool.open("ab") as handle:
        handle.write(cut)
    after = send(ledger, gateway, usages(41, 1))
    wait_for(lambda: len(spool.read_bytes().splitlines()) == 3)

    ledger.cluster.start()
    more = send(ledger, gateway, usages(42, 1))  # its batch replays the spool first
    wait_for(lambda: ledger.row_count() == 3)
    assert ledger.usage() == before | after | more
    assert not spool.exists()
    assert (tmp_path / "usage-spool.jsonl.rejected").read_bytes() == cut + b"\n"
