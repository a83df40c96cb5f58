"""The shipped Grafana dashboard against a real Prometheus (Debian's ``prometheus``) scraping a
live gateway every second: after a few seconds of mixed traffic (successes, streams, an upstream
error, a retry and a fallback, cache misses and hits, rate-limit and quota refusals, an
unauthenticated call), every query of every panel returns data through Prometheus's HTTP API."""

from __future__ import annotations

import json
import math
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, IssuedKey, wait_for
from tests.e2e.conftest import MODEL
from tests.fakes.openai_upstream import ErrorReply, Reply

pytestmark = [pytest.mark.e2e]

DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "llm-gateway.json"
# Grafana's variables as the test fills them in: rate windows fixed, every selector "all".
VARIABLES = {
    "$__rate_interval": "30s",
    "$__interval": "5s",
    "$__range": "1m",
    "$provider": ".*",
    "$model": ".*",
}

LIMITS = """
models:
  - name: cached
    cache: {ttl_seconds: 300, key: full_request}
    deployments:
      - provider: fake-openai
        model: cached-upstream
        input_per_million: "0.15"
        output_per_million: "0.60"
  - name: flaky
    fallbacks: [gpt-4o-mini]
    deployments:
      - provider: fake-openai
        model: flaky-upstream
        input_per_million: "0.15"
        output_per_million: "0.60"
tiers:
  - name: one-a-minute
    algorithm: token_bucket  # no window boundary to cross mid-test
    requests_per_minute: 1
tenants:
  - name: limited
    tier: one-a-minute
  - name: broke
    quotas:
      - period: day
        limit_usd: "0.0001"
        hard: true
"""


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, expression with the variables substituted) for every panel target."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    queries = []
    for panel in panels:
        for target in panel["targets"]:
            expr = target["expr"]
            for name, replacement in VARIABLES.items():
                expr = expr.replace(name, replacement)
            assert "$" not in expr, f"unsubstituted variable in {panel['title']!r}: {expr}"
            queries.append((panel["title"], expr))
    return queries


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[callable]:
    binary = shutil.which("prometheus")
    assert binary, "Debian's prometheus package is required (.ci/run installs it)"
    processes: list[subprocess.Popen[bytes]] = []

    def _start(target: str) -> str:
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            f"  - job_name: llm-gateway\n    static_configs: [{{targets: ['{target}']}}]\n"
        )
        port = free_port()
        log = (tmp_path / "prometheus.log").open("wb")
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        processes.append(process)
        base = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            assert process.poll() is None, (tmp_path / "prometheus.log").read_text()
            try:
                return httpx.get(f"{base}/-/ready", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(ready, timeout=20, interval=0.1)
        return base

    yield _start
    for process in processes:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def send_traffic(base: str, keys: dict[str, IssuedKey], upstream, *, prometheus: str, rounds: int) -> None:
    """Mixed traffic from one thread (the fake's scripted answers are taken in order), in rounds
    each followed by a scrape: with two rounds or more, every series is scraped twice or more and
    grows in between, as ``rate()`` needs."""

    def client(tenant: str) -> httpx.Client:
        return httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {keys[tenant].raw}"}, timeout=10
        )

    body = {"model": MODEL, "messages": [{"role": "user", "content": "hello"}]}
    stream = {**body, "stream": True, "stream_options": {"include_usage": True}}
    with client("acme") as acme, client("limited") as limited, client("broke") as broke:
        assert broke.post("/v1/chat/completions", json=body).status_code == 429  # quota
        assert limited.post("/v1/chat/completions", json=body).status_code == 200
        for _ in range(rounds):
            assert acme.post("/v1/chat/completions", json=body).status_code == 200
            # the same question to a caching model: a miss the first time, L1 hits after
            assert acme.post("/v1/chat/completions", json={**body, "model": "cached"}).status_code == 200
            with acme.stream("POST", "/v1/chat/completions", json=stream) as response:
                assert response.status_code == 200
                response.read()
            upstream.enqueue(ErrorReply(400, "Bad request.", param="messages"))
            assert acme.post("/v1/chat/completions", json=body).status_code == 400
            # flaky: a 500, its retry's 500, then the fallback model answers
            upstream.enqueue(ErrorReply(500, "Boom.", type="server_error"), ErrorReply(500, "Boom."), Reply())
            assert acme.post("/v1/chat/completions", json={**body, "model": "flaky"}).status_code == 200
            assert limited.post("/v1/chat/completions", json=body).status_code == 429  # rate limit
            assert httpx.post(f"{base}/v1/chat/completions", json=body).status_code == 401
            scraped_after(prometheus, time.time())


def scraped_after(prometheus: str, moment: float) -> None:
    """Wait until Prometheus holds a scrape of the gateway begun after ``moment`` (wall clock):
    its ``up`` sample is stamped with the scrape's start."""

    def latest_scrape() -> float:
        result = query(prometheus, 'timestamp(up{job="llm-gateway"})')
        return float(result[0]["value"][1]) if result else 0.0  # type: ignore[index]

    wait_for(lambda: latest_scrape() > moment, timeout=10)


def query(prometheus_base: str, expr: str) -> list[dict[str, object]]:
    response = httpx.get(f"{prometheus_base}/api/v1/query", params={"query": expr}, timeout=10)
    payload = response.json()
    assert payload["status"] == "success", f"{expr}: {payload}"
    return list(payload["data"]["result"])


def test_every_dashboard_query_returns_data(start_proxy, make_key, prometheus):
    queries = dashboard_queries()
    assert len(queries) >= 20
    proxy = start_proxy(
        extra_yaml=LIMITS,
        GATEWAY_RETRIES="1",
        GATEWAY_RETRY_INITIAL_SECONDS="0.01",
        GATEWAY_BREAKER_FAILURES="1000",  # the scripted failures must not open flaky's breaker
    )
    keys = {"acme": proxy.key, "limited": make_key("limited"), "broke": make_key("broke")}
    prom = prometheus(re.sub(r"^http://", "", proxy.gateway.base_url))
    send_traffic(proxy.gateway.base_url, keys, proxy.upstream, prometheus=prom, rounds=3)

    empty = []
    for title, expr in queries:
        result = query(prom, expr)
        values = [float(sample["value"][1]) for sample in result]  # type: ignore[index]
        # A series may be NaN (a quantile of a deployment idle in the window); one must not be.
        if not any(math.isfinite(v) for v in values):
            empty.append(f"{title}: {expr} -> {values}")
    assert empty == [], "queries without data:\n" + "\n".join(empty)
    hits = query(prom, 'sum(llm_gateway_cache_hits_total{cache_type="l1"})')
    assert float(hits[0]["value"][1]) >= 1  # type: ignore[index]
    up = query(prom, 'up{job="llm-gateway"}')
    assert [sample["value"][1] for sample in up] == ["1"]  # type: ignore[index]
