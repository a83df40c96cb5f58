"""The ``cluster`` profile (``python -m bench --only cluster``, alone): three gateway instances
(one Daphne process each) on a Redis Cluster of three primaries and one PostgreSQL, both owned
by the run, with the built-in mock model (no upstream cost in the numbers). It reports:

- throughput: closed-loop clients spread over the three gateways for ``--duration`` seconds,
  a tenant whose tier admits them all (each request still passes the limiter's scripts on the
  cluster), requests per second and latency percentiles;
- exact limits: tenants with 50 requests a minute (their counters on different primaries),
  150 requests each released at once over the three gateways: exactly 50 admitted each;
- the ledger: every admitted request recorded once (the outbox drained into PostgreSQL)."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import psycopg

from bench.gateway import gateway_env, manage, start_daphne
from bench.options import Options
from bench.postgres_cluster import OwnedPostgres
from bench.redis_topology import OwnedRedisCluster
from bench.report import write_json
from bench.upstreams import ROOT

LIMITED_RPM = 50
LIMITED_TENANTS = 4
BURST = 150
CONFIG = """
providers:
  - name: mock
    kind: mock
    options: {chunk_delay_ms: 0}
models:
  - name: mock-echo
    deployments:
      - {provider: mock, model: mock-echo, free: true}
tiers:
  - {name: open, algorithm: sliding_window, requests_per_minute: 100000000}
  - {name: limited, algorithm: fixed_window, requests_per_minute: 50}
tenants:
  - {name: load, tier: open}
"""
BODY = {"model": "mock-echo", "messages": [{"role": "user", "content": "hi"}]}


async def _closed_loop(urls: list[str], key: str, *, clients: int, seconds: float) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds

    async def client(i: int, session: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.monotonic() < deadline:
            started = time.perf_counter()
            response = await session.post(
                urls[i % len(urls)], json=BODY, headers={"Authorization": f"Bearer {key}"}
            )
            if response.status_code == 200:
                latencies.append(time.perf_counter() - started)
            else:
                errors += 1

    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=clients)) as session:
        await asyncio.gather(*(client(i, session) for i in range(clients)))
    return latencies, errors


async def _burst(urls: list[str], key: str, count: int) -> list[int]:
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=count)) as session:
        replies = await asyncio.gather(
            *(
                session.post(urls[i % len(urls)], json=BODY, headers={"Authorization": f"Bearer {key}"})
                for i in range(count)
            )
        )
    return [r.status_code for r in replies]


def _keys(env: dict[str, str], workdir: Path) -> tuple[str, list[str]]:
    limited = "".join(f"  - {{name: limited{i}, tier: limited}}\n" for i in range(LIMITED_TENANTS))
    config = workdir / "gateway.yaml"
    config.write_text(CONFIG + limited)
    manage("migrate", "--noinput", "-v", "0", env=env)
    manage("applyconfig", str(config), env=env)

    def issue(tenant: str) -> str:
        return manage("issuekey", "--tenant", tenant, "--name", "bench", env=env).strip().splitlines()[-1]

    return issue("load"), [issue(f"limited{i}") for i in range(LIMITED_TENANTS)]


def _records(url: str) -> int:
    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute("SELECT count(*) FROM accounting_usagerecord").fetchone()
    return int(row[0]) if row else 0


def run_cluster(options: Options, *, source: dict[str, object]) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="gateway-cluster-"))
    redis_cluster = OwnedRedisCluster().start()
    postgres = OwnedPostgres(fsync=False).init("gateway")
    servers = []
    try:
        env = gateway_env(workdir, redis_url=redis_cluster.url, redis_prefix="bench:")
        env.update(
            {
                "DATABASE_URL": postgres.url("gateway"),
                "SECRET_KEY": "bench-cluster",
                "GATEWAY_MOCK_CHUNK_DELAY_MS": "0",
            }
        )
        load_key, limited_keys = _keys(env, workdir)
        for i in range(3):
            data = workdir / f"gw{i}"
            data.mkdir()
            servers.append(
                start_daphne(
                    f"gateway{i}",
                    "gateway_site.asgi:application",
                    env={**env, "GATEWAY_DATA_DIR": str(data)},
                    cpu=None,
                    workdir=workdir,
                )
            )
        urls = [f"{s.base_url}/v1/chat/completions" for s in servers]
        clients = max(options.concurrency)
        warm, _ = asyncio.run(_closed_loop(urls, load_key, clients=clients, seconds=options.warmup))
        latencies, errors = asyncio.run(
            _closed_loop(urls, load_key, clients=clients, seconds=options.duration)
        )
        bursts = [asyncio.run(_burst(urls, key, BURST)) for key in limited_keys]
        admitted = [statuses.count(200) for statuses in bursts]
        expected = len(warm) + len(latencies) + sum(admitted)
        deadline = time.monotonic() + 60
        while _records(postgres.url("gateway")) < expected and time.monotonic() < deadline:
            time.sleep(0.5)
        recorded = (_records(postgres.url("gateway")), expected)
    finally:
        for server in servers:
            server.service.stop()
        redis_cluster.stop_all()
        postgres.destroy()
    return _report(options, latencies, errors=errors, admitted=admitted, recorded=recorded, source=source)


def _report(
    options: Options,
    latencies: list[float],
    *,
    errors: int,
    admitted: list[int],
    recorded: tuple[int, int],
    source: dict[str, object],
) -> int:
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return round(1000 * ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2) if ordered else 0.0

    result = {
        "requests": len(latencies),
        "errors": errors,
        "rps": round(len(latencies) / options.duration, 1),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "mean_ms": round(1000 * statistics.fmean(latencies), 2) if latencies else 0.0,
        "limited_admitted": admitted,
        "limit": LIMITED_RPM,
        "records": recorded[0],
        "records_expected": recorded[1],
    }
    print(
        f"cluster: 3 gateways on a 3-primary Redis Cluster, "
        f"{max(options.concurrency)} clients, {options.duration}s"
    )
    for name, value in result.items():
        print(f"  {name:17} {value}")
    exact = all(a == LIMITED_RPM for a in admitted)
    print(f"limits exact: {'yes' if exact else 'NO'}")
    path = write_json(
        [],
        {"mode": options.mode, "profile": "cluster", "source": source},
        directory=options.results_dir,
        mode=f"{options.mode}-cluster",
        extra={"cluster": result},
    )
    print(f"results: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0 if exact and errors == 0 and recorded[0] == recorded[1] else 1
