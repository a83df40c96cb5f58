"""What the admin's live tail costs the request path: the gateway's CPU time per request under the
same wrk load, with nobody watching and with one staff WebSocket watching (it receives every
row). The built-in mock provider answers in process (no upstream), so the gateway's own work is
all there is to measure. Runs alternate (unwatched, watched, ...) so they share the machine's
mood; medians are printed. Results: docs/benchmarks.md, "The live tail".

    .venv/bin/python -m bench.live_tail [--seconds 8] [--repeats 3] [--redis-url redis://127.0.0.1:6379/13]

Each configuration is its own gateway (one Daphne process pinned to CPU 0, wrk on CPU 1): in
memory (no ``REDIS_URL``) and, with ``--redis-url``, on Redis (channels-redis, watchers in Redis)."""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import redis
from websockets.sync.client import connect

from bench.gateway import gateway_env, manage, start_daphne
from bench.proc import cpu_seconds
from bench.wrk import lua_script, run_wrk

CONFIG = """
providers:
  - {name: mock, kind: mock, options: {chunk_delay_ms: 0}}
models:
  - name: mock-echo
    deployments: [{provider: mock, model: mock-echo, free: true}]
tenants:
  - {name: bench}
"""
BODY = json.dumps({"model": "mock-echo", "messages": [{"role": "user", "content": "Hello"}]}).encode()
PASSWORD = "bench-live-tail-password-1"


def session_cookie(base_url: str) -> str:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        client.get("/admin/login/")
        token = client.cookies["csrftoken"]
        client.post(
            "/admin/login/?next=/admin/",
            data={"username": "bench", "password": PASSWORD, "csrfmiddlewaretoken": token, "next": "/admin/"},
            headers={"Referer": f"{base_url}/admin/login/"},
        )
        return str(client.cookies["sessionid"])


class Watcher:
    """One staff WebSocket on the live tail, counting the rows it receives."""

    def __init__(self, base_url: str, cookie: str) -> None:
        self.rows = 0
        self._socket = connect(
            base_url.replace("http://", "ws://") + "/admin/live/ws",
            additional_headers={"Cookie": f"sessionid={cookie}"},
            origin=base_url,
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for message in self._socket:
                self.rows += len(json.loads(message)["rows"])
        except Exception:  # closed
            return

    def close(self) -> None:
        self._socket.close()
        self._thread.join(timeout=5)


def measure(
    name: str, *, redis_url: str, seconds: int, repeats: int, connections: int, workdir: Path
) -> None:
    home = workdir / name
    home.mkdir()
    prefix = f"bench:live:{time.time_ns()}:"
    env = gateway_env(home / "data", redis_url=redis_url or None, redis_prefix=prefix)
    env.update({"DJANGO_SUPERUSER_PASSWORD": PASSWORD, "GATEWAY_ACCESS_LOG": "false"})
    manage("migrate", "--noinput", "-v", "0", env=env)
    (home / "gateway.yaml").write_text(CONFIG)
    manage("applyconfig", str(home / "gateway.yaml"), env=env)
    key = manage("issuekey", "--tenant", "bench", "--name", "bench", env=env).strip().splitlines()[-1].strip()
    manage("createsuperuser", "--noinput", "--username", "bench", "--email", "b@example.com", env=env)
    script = home / "post.lua"
    script.write_text(lua_script(body=BODY, key=key))
    server = start_daphne(name, "gateway_site.asgi:application", env=env, cpu=0, workdir=home)
    url = f"{server.base_url}/v1/chat/completions"
    try:
        cookie = session_cookie(server.base_url)
        run_wrk(url, script=script, connections=connections, seconds=2, cpu=1)  # warm-up
        results: dict[str, list[float]] = {"unwatched": [], "watched": []}
        rows = 0
        for _ in range(repeats):
            for mode in ("unwatched", "watched"):
                watcher = Watcher(server.base_url, cookie) if mode == "watched" else None
                time.sleep(1.5)  # every process knows who watches (the poll is once a second)
                before = cpu_seconds(server.service.pid)
                result = run_wrk(url, script=script, connections=connections, seconds=seconds, cpu=1)
                spent = cpu_seconds(server.service.pid) - before
                if result.non_2xx or result.socket_errors:
                    raise RuntimeError(f"{name} {mode}: errors under load: {result.as_dict()}")
                results[mode].append(spent / result.requests * 1e6)
                if watcher is not None:
                    time.sleep(1.0)
                    watcher.close()
                    rows += watcher.rows
                print(
                    f"{name:10} {mode:9} {result.requests_per_s:8.0f} req/s "
                    f"{results[mode][-1]:7.1f} us CPU/request"
                    + (f"  rows received {watcher.rows}" if watcher else ""),
                    flush=True,
                )
        unwatched, watched = (statistics.median(results[m]) for m in ("unwatched", "watched"))
        print(
            f"{name:10} median: unwatched {unwatched:.1f} us, watched {watched:.1f} us CPU/request "
            f"({(watched / unwatched - 1) * 100:+.1f}%); rows received while watched: {rows}",
            flush=True,
        )
    finally:
        server.service.stop()
        if redis_url:
            client = redis.Redis.from_url(redis_url, socket_timeout=5)
            stale = list(client.scan_iter(match=f"{prefix}*", count=1000))
            if stale:
                client.delete(*stale)
            client.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--redis-url", default="", help="also measure a gateway on this Redis")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-live-tail-") as tmp:
        common = {"seconds": args.seconds, "repeats": args.repeats, "connections": args.connections}
        measure("in-memory", redis_url="", workdir=Path(tmp), **common)
        if args.redis_url:
            measure("redis", redis_url=args.redis_url, workdir=Path(tmp), **common)


if __name__ == "__main__":
    main()
