"""``python -m bench.ttft_stages``: where the time to first token of a streamed chat request
goes, stage by stage, on the full path (Redis limits and a hard quota) at one stream at a time.

The streaming upstream of ``bench.servers`` notes when each request arrives and when its first
chunk is written (``GET /times``); the gateway runs ``bench.ttft_probe`` (its application with a
timestamp at each stage); the client notes when it sent the request and when the first content
chunk arrived. All are wall-clock times on one machine, so the stages line up across processes.
The same client against the upstream directly gives the baseline, and against
``bench.stream_floor_app`` (the thinnest streaming relay on Daphne) the floor: what any proxy on
this server adds before doing work of its own. Needs Redis (``REDIS_URL``, default
``redis://127.0.0.1:6379/0``; keys under a prefix of the run's own, deleted after)."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import redis

from bench.gateway import gateway_env, manage
from bench.proc import start_service, wait_until
from bench.profiles import FULL, TENANT
from bench.upstreams import ROOT, free_port, listening_socket

STAGES = (
    ("client_sent", "client sends, Daphne parses, the application starts"),
    ("app", "request object, body read and parsed, key and model resolved"),
    ("route", "estimate, route planned"),
    ("admit", "admission: plan built, call queued"),
    ("redis_sent", "admission: the Redis pipeline (one script call)"),
    ("redis_answered", "admission: verdict read, headers set"),
    ("admitted", "cache consulted, upstream request built"),
    ("upstream_sent", "aiohttp sends it; the upstream reads it"),
    ("upstream_received", None),  # then the upstream's own 50 ms before its first chunk
    ("upstream_first_chunk", "chunk read, parsed, translated, encoded, handed to Daphne"),
    ("first_body_sent", "Daphne writes it; the client reads it"),
    ("client_first_chunk", None),
)


CONFIG = """providers:
  - name: stream
    kind: openai
    base_url: {base_url}
    api_key_env: ""
models:
  - name: bench-stream
    deployments:
      - provider: stream
        model: upstream-stream
        input_per_million: "0.15"
        output_per_million: "0.60"
"""


# --- the client --------------------------------------------------------------------------------


async def stream_many(url: str, key: str, model: str, count: int) -> list[tuple[float, float]]:
    """(sent, first content chunk) of ``count`` streams, one after the other."""
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    samples = []
    async with aiohttp.ClientSession() as session:
        for _ in range(count):
            sent, first = time.time(), 0.0
            async with session.post(url, json=body, headers={"Authorization": f"Bearer {key}"}) as response:
                async for line in response.content:
                    if not first and b'"content"' in line:
                        first = time.time()
            samples.append((sent, first))
            await asyncio.sleep(0.02)
    return samples


def upstream_times(base: str) -> list[tuple[float, float]]:
    async def fetch() -> list[tuple[float, float]]:
        async with aiohttp.ClientSession() as session, session.get(f"{base}/times") as response:
            return [tuple(pair) for pair in await response.json()]

    return asyncio.run(fetch())


# --- the run -----------------------------------------------------------------------------------


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:6.2f} (min {min(values) * 1000:5.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=60, help="streams each way (default 60)")
    parser.add_argument("--warmup", type=int, default=5, help="first streams left out (default 5)")
    args = parser.parse_args()
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"ttft-{secrets.token_hex(4)}:"
    workdir = Path(tempfile.mkdtemp(prefix="gw-ttft-"))
    gw_port, floor_port = free_port(), free_port()
    sock = listening_socket()
    upstream_base, gateway_base = f"http://127.0.0.1:{sock.getsockname()[1]}", f"http://127.0.0.1:{gw_port}"
    floor_base = f"http://127.0.0.1:{floor_port}"
    env = gateway_env(workdir / "data", redis_url=redis_url, redis_prefix=prefix)
    env["TTFT_STAGES_LOG"] = str(workdir / "stages.log")
    config = workdir / "gateway.yaml"
    config.write_text(CONFIG.format(base_url=f"{upstream_base}/v1") + FULL.config_yaml())
    manage("migrate", "--noinput", "-v", "0", env=env)
    manage("applyconfig", str(config), env=env)
    issued = manage("issuekey", "--tenant", TENANT, "--name", "ttft", env=env)
    key = issued.strip().splitlines()[-1].strip()
    upstream_argv = [sys.executable, "-m", "bench.servers", "stream", "--fd", str(sock.fileno())]
    upstream = start_service("upstream", upstream_argv, log_dir=workdir, cwd=ROOT, pass_fds=[sock.fileno()])
    sock.close()
    daphne = ["-m", "daphne", "-b", "127.0.0.1", "-p", str(gw_port), "bench.ttft_probe:application"]
    gateway = start_service("gateway", [sys.executable, *daphne], log_dir=workdir, cwd=ROOT, env=env)
    floor_env = {**env, "BENCH_UPSTREAM_URL": f"{upstream_base}/v1/chat/completions"}
    floor_app = "bench.stream_floor_app:application"
    floor_argv = ["-m", "daphne", "-b", "127.0.0.1", "-p", str(floor_port), floor_app]
    floor = start_service("floor", [sys.executable, *floor_argv], log_dir=workdir, cwd=ROOT, env=floor_env)
    try:
        wait_until(lambda: _answers(f"{upstream_base}/times"), service=upstream, timeout=20)
        wait_until(lambda: _answers(f"{gateway_base}/live"), service=gateway, timeout=30)
        wait_until(lambda: _answers(f"{floor_base}/live"), service=floor, timeout=30)
        chat = "/v1/chat/completions"
        # The upstream's /times then holds the direct, floor and gateway samples, in that order.
        direct = asyncio.run(stream_many(f"{upstream_base}{chat}", "none", "upstream-stream", args.streams))
        bare = asyncio.run(stream_many(f"{floor_base}{chat}", "none", "upstream-stream", args.streams))
        via = asyncio.run(stream_many(f"{gateway_base}{chat}", key, "bench-stream", args.streams))
        upstream_seen = upstream_times(upstream_base)
    finally:
        floor.stop()
        gateway.stop()
        upstream.stop()
        client = redis.Redis.from_url(redis_url)
        stale = list(client.scan_iter(match=f"{prefix}*"))
        if stale:
            client.delete(*stale)
        client.close()
    report(direct, bare, via, upstream_seen, (workdir / "stages.log").read_text(), warmup=args.warmup)


def _answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def report(
    direct: list[tuple[float, float]],
    bare: list[tuple[float, float]],
    via: list[tuple[float, float]],
    upstream_seen: list[tuple[float, float]],
    stages_log: str,
    *,
    warmup: int,
) -> None:
    requests: list[dict[str, float]] = []
    for line in stages_log.splitlines():
        stage, at = line.split()
        if stage == "app":
            requests.append({})
        if requests and stage not in requests[-1]:
            requests[-1][stage] = float(at)
    n = len(direct)
    direct_pairs = list(zip(direct, upstream_seen[:n], strict=True))[warmup:]
    gateway_seen = upstream_seen[n + len(bare) :]
    rows: dict[str, list[float]] = {name: [] for name, _ in STAGES}
    for (sent, first), (arrived, chunk), stages in list(zip(via, gateway_seen, requests, strict=True))[
        warmup:
    ]:
        times = {**stages, "client_sent": sent, "upstream_received": arrived, "upstream_first_chunk": chunk}
        times["client_first_chunk"] = first
        for (name, _), (following, _) in itertools.pairwise(STAGES):
            rows[name].append(times[following] - times[name])
    direct_ttft, floor_ttft, gateway_ttft = ([f - s for s, f in run[warmup:]] for run in (direct, bare, via))
    print(f"time to first token, p50 ms: direct {_ms(direct_ttft)}, gateway {_ms(gateway_ttft)}")
    to_upstream = _ms([arrived - sent for (sent, _), (arrived, _) in direct_pairs])
    back = _ms([first - chunk for (_, first), (_, chunk) in direct_pairs])
    print(f"direct: client to upstream {to_upstream}, upstream's first chunk to client {back}")
    direct_p50, floor_p50, gateway_p50 = (
        statistics.median(v) for v in (direct_ttft, floor_ttft, gateway_ttft)
    )
    print(
        f"floor (bare ASGI relay on Daphne): time to first token p50 {_ms(floor_ttft)}, "
        f"{(floor_p50 - direct_p50) * 1000:+.2f} ms over direct"
    )
    print(
        f"gateway: {(gateway_p50 - direct_p50) * 1000:+.2f} ms over direct, "
        f"{(gateway_p50 - floor_p50) * 1000:+.2f} ms over the floor"
    )
    print("gateway, stage by stage (p50 ms, min):")
    for name, what in STAGES:
        if what is not None:
            print(f"  {name:>22} -> {_ms(rows[name])}  {what}")


if __name__ == "__main__":
    main()
