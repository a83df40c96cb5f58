"""``manage.py serve``: several Daphne workers on one socket, and a clean stop that loses no usage."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from accounting.models import UsageRecord
from tests.conftest import ROOT, database_url_for_subprocess, mock_echo_yaml, wait_for
from tests.e2e.scrape import parse, total, value

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MOCK = mock_echo_yaml()
SERVE_LOGGER = "gateway_site.management.commands.serve"
LISTENING = re.compile(r"gateway listening on http://127\.0\.0\.1:(\d+) with (\d+) worker")


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    base: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def pid_of_health(self) -> int:
        with httpx.Client(timeout=5) as client:  # a new connection each time
            return int(client.get(f"{self.base}/health").json()["pid"])


@pytest.fixture
def serve(tmp_path, redis_prefix, settings, telemetry_outputs):
    """``serve(workers=N, live=True, **env)``: ``manage.py serve`` on a free port, its stdout and
    stderr (its own and its workers') in a log file, which is scanned for the canary."""
    started: list[Served] = []

    def _serve(*, workers: int, live: bool = True, **env: str) -> Served:
        full_env = {
            "PATH": "/usr/bin:/bin",
            "DATABASE_URL": database_url_for_subprocess(),
            "SECRET_KEY": settings.SECRET_KEY,
            "GATEWAY_DATA_DIR": str(tmp_path / "data"),
            "GATEWAY_REDIS_PREFIX": redis_prefix,
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        log_path = tmp_path / f"serve-{len(started)}.log"
        telemetry_outputs.log_paths.append(log_path)
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "manage.py", "serve", "--port", "0", "--workers", str(workers)],
                cwd=ROOT,
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        served = Served(process=process, base="", log_path=log_path)
        started.append(served)
        match = wait_for(lambda: LISTENING.search(served.log()), timeout=30)
        assert match.group(2) == str(workers)
        served.base = f"http://127.0.0.1:{match.group(1)}"
        if live:
            wait_for(lambda: _live(served.base), timeout=30)
        return served

    yield _serve
    for served in started:  # SIGTERM first: a killed parent would leave its workers running
        if served.process.poll() is None:
            served.process.send_signal(signal.SIGTERM)
            try:
                served.process.wait(30)
            except subprocess.TimeoutExpired:
                served.process.kill()
                served.process.wait(10)


def _live(base: str) -> bool:
    try:
        return httpx.get(f"{base}/live", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _worker_pids(served: Served, *, count: int) -> set[int]:
    """The pids that answered ``/health`` over fresh connections, once ``count`` of them did."""
    pids: set[int] = set()

    def enough() -> bool:
        with ThreadPoolExecutor(4) as pool:
            pids.update(pool.map(lambda _: served.pid_of_health(), range(16)))
        return len(pids) >= count

    wait_for(enough, timeout=30, interval=0)
    return pids


def test_two_workers_share_the_socket_and_both_serve(serve, configure):
    configure(MOCK)
    served = serve(workers=2)
    pids = _worker_pids(served, count=2)
    assert served.process.pid not in pids
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(20) == 0


def test_sigterm_flushes_queued_usage_before_exit(serve, configure, make_key):
    configure(MOCK)
    key = make_key("acme")
    # A flush interval far longer than the test: only the shutdown drain can write these.
    served = serve(workers=1, GATEWAY_USAGE_FLUSH_SECONDS="300", GATEWAY_USAGE_BATCH_SIZE="100000")
    process, base = served.process, served.base
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
    served = serve(workers=2, PROMETHEUS_MULTIPROC_DIR=str(directory), GATEWAY_MOCK_CHUNK_DELAY_MS="0")
    process, base = served.process, served.base
    assert not (directory / "counter_999999.db").exists()
    body = {"model": "mock-echo", "messages": [{"role": "user", "content": "count me"}]}
    pids: set[int] = set()

    def call(_: int) -> int:
        with httpx.Client(timeout=10, headers={"Authorization": f"Bearer {key.raw}"}) as client:
            assert client.post(f"{base}/v1/chat/completions", json=body).status_code == 200
            return int(client.get(f"{base}/health").json()["pid"])

    made = 0
    deadline = time.monotonic() + 30
    # Rounds of 8 until both workers served some (the second may still be starting at first).
    while len(pids) < 2 and time.monotonic() < deadline:
        with ThreadPoolExecutor(8) as pool:
            pids |= set(pool.map(call, range(8)))
        made += 8
    assert len(pids) == 2
    for _ in range(6):  # whichever worker answers, it reports both workers' counts
        with httpx.Client(timeout=10) as client:  # a new connection each time
            samples = parse(client.get(f"{base}/metrics").text)
        assert total(samples, "llm_gateway_requests_total") == made
        assert (
            value(
                samples,
                "llm_gateway_requests_total",
                provider="mock",
                model="mock-echo",
                status="200",
                endpoint="chat.completions",
            )
            == made
        )
        assert value(samples, "llm_gateway_active_requests") == 0
    process.send_signal(signal.SIGTERM)
    assert process.wait(20) == 0
    assert not any(directory.glob("gauge_live*"))  # the dead workers' live gauges are gone


def _chat(base: str, key: str) -> int:
    body = {"model": "mock-echo", "messages": [{"role": "user", "content": "still there?"}]}
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.post(f"{base}/v1/chat/completions", json=body, headers=headers, timeout=10).status_code


def test_a_killed_worker_is_replaced_while_the_other_keeps_answering(serve, configure, make_key, tmp_path):
    configure(MOCK)
    key = make_key("acme")
    directory = tmp_path / "multiproc"
    # Usage is written by the shutdown drain alone: the records counted below are the requests
    # sent after the kill, served by the surviving and the new worker.
    served = serve(
        workers=2,
        PROMETHEUS_MULTIPROC_DIR=str(directory),
        GATEWAY_USAGE_FLUSH_SECONDS="300",
        GATEWAY_USAGE_BATCH_SIZE="100000",
    )
    first = _worker_pids(served, count=2)
    victim, survivor = sorted(first)

    def victim_has_live_gauge() -> bool:  # a worker makes its metrics files on its first request
        refused = httpx.post(f"{served.base}/v1/chat/completions", json={}, timeout=5)
        assert refused.status_code == 401  # no key: metrics counted, no usage recorded
        return len(list(directory.glob(f"gauge_live*_{victim}.db"))) == 1

    wait_for(victim_has_live_gauge, timeout=30)
    os.kill(victim, signal.SIGKILL)

    statuses: list[int] = []
    answered_by_survivor = 0
    while True:  # until the replacement answers; every request meanwhile goes to the survivor
        statuses.append(_chat(served.base, key.raw))
        pid = served.pid_of_health()
        if pid not in first:
            replacement = pid
            break
        assert pid == survivor
        answered_by_survivor += 1
        assert len(statuses) < 2000, "no replacement worker answered"
    statuses += [_chat(served.base, key.raw) for _ in range(20)]
    assert served.process.poll() is None
    assert statuses == [200] * len(statuses)
    assert answered_by_survivor >= 5  # the gap: requests served while one worker was down
    log = served.log()
    assert f"ERROR {SERVE_LOGGER} worker pid {victim} exited (signal SIGKILL); restarting in 0.5 s" in log
    assert f"worker pid {replacement} started, replacing pid {victim}" in log
    assert list(directory.glob(f"gauge_live*_{victim}.db")) == []  # marked dead for the metrics
    assert _worker_pids(served, count=2) >= {survivor, replacement}

    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(30) == 0
    assert UsageRecord.objects.count() == len(statuses)
    assert "restarting" not in served.log().split(f"replacing pid {victim}")[1]


# (not anchored at a line's start: a worker's output may share the line)
STAMP = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})"
EXIT_LINE = re.compile(
    STAMP + r" ERROR \S+ worker pid (\d+) exited \(exit code 1\); restarting in ([\d.]+) s$", re.M
)
START_LINE = re.compile(STAMP + r" INFO \S+ worker pid (\d+) started, replacing pid (\d+)$", re.M)


def _stamp(text: str) -> float:
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def test_a_worker_that_cannot_start_is_restarted_ever_more_slowly(serve):
    # A settings error that only the workers meet: the settings check REDIS_URL's scheme, but
    # its query options are read by redis-py when the workers build their clients at start.
    served = serve(workers=1, live=False, REDIS_URL="redis://127.0.0.1:6379/0?socket_timeout=soon")
    wait_for(lambda: len(EXIT_LINE.findall(served.log())) == 1, timeout=30)
    cpu_before = _cpu_seconds(served.process.pid)
    wait_for(lambda: len(EXIT_LINE.findall(served.log())) == 4, timeout=60)
    # the parent's own CPU over three restarts (about 7 s of waiting): it sleeps, it does not spin
    assert _cpu_seconds(served.process.pid) - cpu_before < 0.5
    served.process.send_signal(signal.SIGTERM)  # while it waits 8 s before the fifth start
    stopped_at = time.monotonic()
    assert served.process.wait(10) == 1  # the worker's last exit was a failure
    assert time.monotonic() - stopped_at < 3  # the delay is not waited out

    log = served.log()
    exits = EXIT_LINE.findall(log)
    starts = START_LINE.findall(log)
    assert [float(delay) for _, _, delay in exits] == [0.5, 1.0, 2.0, 4.0]
    assert len(starts) == 3
    for (exited_at, pid, delay), (started_at, _, replaced) in zip(exits, starts, strict=False):
        assert replaced == pid
        waited = _stamp(started_at) - _stamp(exited_at)
        assert float(delay) - 0.05 <= waited <= float(delay) + 1.0
    window = _stamp(exits[0][0]) + 10
    assert len([s for s in starts if _stamp(s[0]) <= window]) <= 3
