"""The usage ledger end to end with a real Celery worker (Redis broker): the gateway appends
every admitted request's event to the Redis outbox (streaming, non-streaming, upstream error,
client disconnect), the worker drains it into exactly one record each, and a worker killed with
SIGKILL mid-drain loses nothing: its pending events are claimed by the next worker."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from decimal import Decimal

import pytest
import redis
from django.conf import settings

from accounting.models import UsageRecord
from accounting.outbox import GROUP, outbox_stream, pending_count
from tests.conftest import ROOT, wait_for
from tests.e2e.conftest import Proxy
from tests.fakes.openai_upstream import ErrorReply, FakeUsage, Reply

pytestmark = pytest.mark.e2e


WORKER_COMMAND = [
    *(sys.executable, "-m", "celery", "-A", "gateway_site", "worker", "-B", "--pool", "solo"),
    *("--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"),
]


class Worker:
    def __init__(self, env: dict[str, str], log_path) -> None:
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                WORKER_COMMAND,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


@pytest.fixture
def workers(tmp_path):
    started: list[Worker] = []

    def _start(env: dict[str, str]) -> Worker:
        worker = Worker(env, tmp_path / "celery.log")
        started.append(worker)
        return worker

    yield _start
    for worker in started:
        worker.kill()


def _send_mixed(proxy: Proxy, rounds: int) -> int:
    """Per round: one non-streaming, one streaming, one upstream error, one client disconnect."""
    for _ in range(rounds):
        proxy.upstream.enqueue(
            Reply(usage=FakeUsage(19, 3)),
            Reply(usage=FakeUsage(11, 2)),
            ErrorReply(status=400, message="bad request upstream"),
            Reply(chunks=tuple(" w" for _ in range(40)), chunk_delay=0.02, usage=FakeUsage(8, 40)),
        )
        assert proxy.http.post("/v1/chat/completions", json=proxy.chat_body()).status_code == 200
        streamed = proxy.http.post(
            "/v1/chat/completions", json=proxy.chat_body(stream=True, stream_options={"include_usage": True})
        )
        assert streamed.status_code == 200
        assert proxy.http.post("/v1/chat/completions", json=proxy.chat_body()).status_code == 400
        with proxy.http.stream("POST", "/v1/chat/completions", json=proxy.chat_body(stream=True)) as response:
            for line in response.iter_lines():
                if '"content":" w"' in line:
                    break
    return rounds * 4


def test_a_killed_celery_worker_loses_no_usage_event(start_proxy, workers, redis_prefix, tmp_path):
    queue = f"gwtest-{secrets.token_hex(4)}"
    celery_env = {
        "CELERY_BROKER_URL": settings.REDIS_URL,
        "GATEWAY_CELERY_QUEUE": queue,
        "GATEWAY_USAGE_CLAIM_IDLE_SECONDS": "1",
        "GATEWAY_USAGE_DRAIN_SECONDS": "0.2",
    }
    proxy: Proxy = start_proxy(**celery_env)
    stream = outbox_stream(redis_prefix)
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5)
    try:
        sent = _send_mixed(proxy, rounds=5)
        # With a broker configured the gateway does not drain: every event waits in the outbox.
        wait_for(lambda: client.xlen(stream) == sent)
        assert UsageRecord.objects.count() == 0

        # A consumer that read a batch and died before storing it (what SIGKILL leaves behind).
        client.xgroup_create(stream, GROUP, id="0", mkstream=True)
        [(_, taken)] = client.xreadgroup(GROUP, "ghost", {stream: ">"}, count=7)
        assert len(taken) == 7

        env = {**proxy.gateway.env, "GATEWAY_USAGE_BATCH_SIZE": "2"}
        first = workers(env)
        wait_for(lambda: UsageRecord.objects.count() > 0, timeout=30)
        first.kill()
        sent += _send_mixed(proxy, rounds=2)  # more arrive while no worker runs

        workers(env)
        wait_for(
            lambda: UsageRecord.objects.count() >= sent and pending_count(client, stream) == 0, timeout=30
        )
        wait_for(lambda: client.xlen(stream) == 0)
        assert UsageRecord.objects.count() == sent
        assert UsageRecord.objects.values("request_id").distinct().count() == sent
        statuses = sorted(UsageRecord.objects.values_list("status", flat=True))
        assert statuses == sorted([200, 200, 400, 499] * (sent // 4))
        ok = UsageRecord.objects.filter(status=200, streamed=False)
        assert {(r.prompt_tokens, r.completion_tokens) for r in ok} == {(19, 3)}
        assert {r.cost_usd for r in ok} == {(19 * Decimal("0.15") + 3 * Decimal("0.60")) / 1_000_000}
        assert "claimed" in tmp_path.joinpath("celery.log").read_text(errors="replace")
    finally:
        client.close()
