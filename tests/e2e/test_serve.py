"""``manage.py serve``: several Daphne workers on one socket, and a clean stop that loses no usage."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from accounting.models import UsageRecord
from tests.conftest import ROOT, database_url_for_subprocess, mock_echo_yaml, wait_for
from tests.e2e.scrape import parse, total, value

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MOCK = mock_echo_yaml()


@pytest.fixture
def serve(tmp_path, redis_prefix, settings):
    processes: list[subprocess.Popen[str]] = []

    def _serve(*, workers: int, **env: str) -> tuple[subprocess.Popen[str], str]:
        full_env = {
            "PATH": "/usr/bin:/bin",
            "DATABASE_URL": database_url_for_subprocess(),
            "SECRET_KEY": settings.SECRET_KEY,
            "GATEWAY_DATA_DIR": str(tmp_path / "data"),
            "GATEWAY_REDIS_PREFIX": redis_prefix,
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        process = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--port", "0", "--workers", str(workers)],
            cwd=ROOT,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        processes.append(process)
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+) with (\d+) worker", line)
        assert match, line
        base = f"http://127.0.0.1:{match.group(1)}"
        wait_for(lambda: _live(base), timeout=30)
        return process, base

    yield _serve
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def _live(base: str) -> bool:
    try:
        return httpx.get(f"{base}/live", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_two_workers_share_the_socket_and_both_serve(serve, configure):
    configure(MOCK)
    process, base = serve(workers=2)
    pids: set[int] = set()

    def health(_: int) -> int:
        with httpx.Client(timeout=5) as client:  # a new connection each time
            return int(client.get(f"{base}/health").json()["pid"])

    with ThreadPoolExecutor(8) as pool:
        for _ in range(10):
            pids |= set(pool.map(health, range(40)))
            if len(pids) == 2:
                break
    assert len(pids) == 2
    assert process.pid not in pids
    process.send_signal(signal.SIGTERM)
    assert process.wait(20) == 0


def test_sigterm_flushes_queued_usage_before_exit(serve, configure, make_key):
    configure(MOCK)
    key = make_key("acme")
    # A flush interval far longer than the test: only the shutdown drain can write these.
    process, base = serve(workers=1, GATEWAY_USAGE_FLUSH_SECONDS="300", GATEWAY_USAGE_BATCH_SIZE="100000")
    body = {"model": "mock-echo", "messages": [{"role": "user", "content": "count me"}]}
    with httpx.Client(timeout=10, headers={"Authorization": f"Bearer {key.raw}"}) as client:
        statuses = [client.post(f"{base}/v1/chat/completions", json=body).status_code for _ in range(25)]
    assert statuses == [200] * 25
    assert UsageRecord.objects.count() == 0
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    assert UsageRecord.objects.count() == 25
    assert set(UsageRecord.objects.values_list("prompt_tokens", "completion_tokens", "status")) == {
        (8, 11, 200)
    }


def test_metrics_add_up_across_workers(serve, configure, make_key, tmp_path):
    configure(MOCK)
    key = make_key("acme")
    directory = tmp_path / "multiproc"
    directory.mkdir()
    (directory / "counter_999999.db").write_bytes(b"stale values of an earlier run")
    process, base = serve(workers=2, PROMETHEUS_MULTIPROC_DIR=str(directory), GATEWAY_MOCK_CHUNK_DELAY_MS="0")
    assert not (directory / "counter_999999.db").exists()
    body = {"model": "mock-echo", "messages": [{"role": "user", "content": "count me"}]}
    pids: set[int] = set()

    def call(_: int) -> int:
        with httpx.Client(timeout=10, headers={"Authorization": f"Bearer {key.raw}"}) as client:
            assert client.post(f"{base}/v1/chat/completions", json=body).status_code == 200
            return int(client.get(f"{base}/health").json()["pid"])

    with ThreadPoolExecutor(8) as pool:
        pids |= set(pool.map(call, range(40)))
    assert len(pids) == 2  # both workers served some of the 40
    for _ in range(6):  # whichever worker answers, it reports both workers' counts
        with httpx.Client(timeout=10) as client:  # a new connection each time
            samples = parse(client.get(f"{base}/metrics").text)
        assert total(samples, "llm_gateway_requests_total") == 40
        assert (
            value(samples, "llm_gateway_requests_total", provider="mock", model="mock-echo", status="200")
            == 40
        )
        assert value(samples, "llm_gateway_active_requests") == 0
    process.send_signal(signal.SIGTERM)
    assert process.wait(20) == 0
    assert not any(directory.glob("gauge_live*"))  # the dead workers' live gauges are gone
