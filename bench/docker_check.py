"""``python -m bench.docker_check``: the image and the Compose stack, run for real on this machine's
Docker daemon (deploy/offline/README.md says how to get the images without a registry).

Image (always): its size, user and health check as built; the roles ``migrate``, ``applyconfig``,
``serve``, ``worker`` and ``beat`` as containers on the host's network against the host's
PostgreSQL (a database of the check's own, made anew) and Redis (a key prefix and Celery queue of
its own); ``serve`` is timed until Docker reports it healthy, a chat request to the mock model is
answered, and its usage record reaches the database through the worker on beat's schedule.

Compose (``--compose``): deploy/compose/ with deploy/offline's images and override (no Grafana,
collector or Jaeger), published on 127.0.0.1 at free ports: both gateway replicas answer, the two
requests' usage records are counted in the stack's PostgreSQL, Prometheus has both replicas up.

Prints one JSON document; exit status 0 when every check held, 1 when one failed, 2 when it could
not run (no daemon, no image). Everything it started is removed at the end unless ``--keep``.
Not run by CI (no Docker daemon there)."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import httpx
import psycopg
import redis

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_DIR = ROOT / "deploy" / "compose"
OFFLINE_DIR = ROOT / "deploy" / "offline"
EXPECTED_USER = "10001:10001"


class CheckFailed(Exception):
    pass


def sh(argv: Sequence[str], *, timeout: float = 600, check: bool = True, cwd: Path | None = None) -> str:
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, cwd=cwd)
    if check and done.returncode != 0:
        raise CheckFailed(f"{' '.join(argv[:4])}... exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait(what: str, condition: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``condition`` held (polled every 0.5 s, at most ``timeout`` seconds)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return round(time.monotonic() - started, 1)
        time.sleep(0.5)
    raise CheckFailed(f"{what}: not within {timeout:.0f} s")


def chat(base: str, key: str, text: str) -> str:
    response = httpx.post(
        f"{base}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "mock-echo", "messages": [{"role": "user", "content": text}]},
        timeout=30,
    )
    if response.status_code != 200:
        raise CheckFailed(f"chat through {base}: {response.status_code} {response.text[:300]}")
    content = response.json()["choices"][0]["message"]["content"]
    if content != f"This is mock-echo. You said: {text}":
        raise CheckFailed(f"chat through {base}: unexpected answer {content!r}")
    return str(response.headers["x-request-id"])


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


# --- the image ----------------------------------------------------------------------------------


def inspect_image(image: str, container: str) -> dict[str, object]:
    """The image's metadata, and what its running ``container`` shows from inside."""
    [info] = json.loads(sh(["docker", "image", "inspect", image]))
    config = info["Config"]
    probe = sh(
        ["docker", "exec", container, "sh", "-c",
         "id -u; id -g; command -v gcc cc make || true; "
         "ls -d /root/.cache/pip ~/.cache/pip 2>/dev/null || true; python --version"],
    ).split()  # fmt: skip
    found = {
        "image": image,
        "size_mb": round(info["Size"] / 1e6, 1),
        "user": config["User"],
        "uid_gid": probe[:2],
        "compilers_or_pip_cache": probe[2:-2],
        "python": probe[-1],
        "healthcheck": config.get("Healthcheck", {}).get("Test", []),
        "entrypoint": config["Entrypoint"],
    }
    if config["User"] != EXPECTED_USER or probe[:2] != ["10001", "10001"]:
        raise CheckFailed(f"the image runs as {config['User']} ({probe[:2]}), not {EXPECTED_USER}")
    if probe[2:-2]:
        raise CheckFailed(f"the image has {probe[2:-2]}")
    if not found["healthcheck"]:
        raise CheckFailed("the image has no HEALTHCHECK")
    return found


def _instant(stamp: str) -> datetime:
    """Docker's RFC 3339 time with nanoseconds, to the microsecond."""
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{whole}.{(fraction + '000000')[:6]}+00:00")


def health(container: str) -> str:
    return sh(["docker", "inspect", "-f", "{{.State.Health.Status}}", container]).strip()


def started_to_healthy(container: str) -> float:
    """Seconds from the container's start to the end of its first passing health check."""
    [info] = json.loads(sh(["docker", "inspect", container]))
    passed = [entry for entry in info["State"]["Health"]["Log"] if entry["ExitCode"] == 0]
    return round((_instant(passed[0]["End"]) - _instant(info["State"]["StartedAt"])).total_seconds(), 1)


def fresh_database(admin_url: str, name: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def usage_request_ids(database_url: str) -> list[str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT request_id FROM accounting_usagerecord ORDER BY request_id").fetchall()
    return [str(row[0]) for row in rows]


def check_image(args: argparse.Namespace, run_id: str, started: list[str]) -> dict[str, object]:
    result: dict[str, object] = {}
    database_url = fresh_database(args.database_url, args.database)
    prefix, queue = f"dc-{run_id}", f"dc-{run_id}"
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": args.redis_url,
        "CELERY_BROKER_URL": args.redis_url,
        "SECRET_KEY": secrets.token_urlsafe(32),
        "GATEWAY_REDIS_PREFIX": prefix,
        "GATEWAY_CELERY_QUEUE": queue,
        "GATEWAY_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "GATEWAY_USAGE_DRAIN_SECONDS": "0.2",
    }
    env_args = [a for name, value in env.items() for a in ("-e", f"{name}={value}")]
    config = ["-v", f"{COMPOSE_DIR / 'gateway.yaml'}:/etc/gateway/gateway.yaml:ro"]
    base = ["docker", "run", "--network", "host", *env_args, *config]

    timings: dict[str, float] = {}
    for role in ("migrate", "applyconfig"):
        began = time.monotonic()
        sh([*base, "--rm", args.image, role], timeout=args.container_timeout)
        timings[role] = round(time.monotonic() - began, 1)

    port = free_port()
    names = {role: f"docker-check-{run_id}-{role}" for role in ("serve", "worker", "beat")}
    began = time.monotonic()
    for role, name in names.items():
        started.append(name)
        # the image's health check asks /live, which only serve answers (compose disables it too)
        quiet = [] if role == "serve" else ["--no-healthcheck"]
        sh(
            [
                *base,
                "-d",
                "--name",
                name,
                *quiet,
                "-e",
                f"PORT={port}",
                "-e",
                "HOST=127.0.0.1",
                args.image,
                role,
            ],
            timeout=args.container_timeout,
        )

    def healthy() -> bool:
        state = health(names["serve"])
        if state == "unhealthy":
            raise CheckFailed("serve became unhealthy")
        return state == "healthy"

    # Docker runs the first check `interval` (10 s) after the start: this is the health as Docker
    # reports it (what Compose's depends_on and an orchestrator see), the port answers earlier.
    timings["serve_answers_ready"] = wait(
        "serve /ready", lambda: answers(f"http://127.0.0.1:{port}/ready"), args.container_timeout
    )
    wait("serve healthy", healthy, 120)
    timings["serve_started_to_healthy"] = started_to_healthy(names["serve"])
    result["inspect"] = inspect_image(args.image, names["serve"])
    issued = sh(["docker", "exec", names["serve"], "python", "manage.py", "issuekey", "--tenant", "demo",
                 "--name", run_id])  # fmt: skip
    key = issued.strip().splitlines()[-1].strip()
    request_id = chat(f"http://127.0.0.1:{port}", key, f"docker check {run_id}")
    timings["usage_recorded"] = wait(
        "the usage record", lambda: usage_request_ids(database_url) == [request_id], args.usage_timeout
    )
    worker_log = sh(["docker", "logs", names["worker"]], check=False)
    result.update(
        timings_s=timings,
        request_id=request_id,
        usage_records=len(usage_request_ids(database_url)),
        worker_ran_drain="accounting.tasks.drain_usage_outbox" in worker_log,
    )
    client = redis.Redis.from_url(args.redis_url)
    for found in client.scan_iter(match=f"{prefix}*", count=500):
        client.delete(found)
    client.delete(queue)
    client.close()
    return result


# --- compose ------------------------------------------------------------------------------------


def compose_command() -> list[str]:
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return ["docker-compose"]


def check_compose(args: argparse.Namespace, run_id: str, project: str) -> dict[str, object]:
    sh([str(COMPOSE_DIR / "make-secrets.sh")])
    gateway_port = free_port()
    env = {
        **os.environ,
        "BIND_ADDRESS": "127.0.0.1",
        # docker-compose 1.29 gives up on a daemon call after 60 s; a container's creation on the
        # vfs storage driver under load takes longer
        "COMPOSE_HTTP_TIMEOUT": str(int(args.container_timeout)),
        "GATEWAY_PORT": str(gateway_port),
        "GATEWAY_PORT_LAST": str(gateway_port + 1),
        "PROMETHEUS_PORT": str(free_port()),
    }
    compose = [
        *compose_command(), "-p", project, "--env-file", str(OFFLINE_DIR / "offline.env"),
        "-f", str(COMPOSE_DIR / "compose.yaml"), "-f", str(OFFLINE_DIR / "compose.offline.yaml"),
    ]  # fmt: skip

    def run(*argv: str, timeout: float = 600) -> str:
        done = subprocess.run([*compose, *argv], capture_output=True, text=True, env=env, timeout=timeout)
        if done.returncode != 0:
            raise CheckFailed(
                f"compose {' '.join(argv[:2])}: exited {done.returncode}: {done.stderr[-2000:]}"
            )
        return done.stdout

    began = time.monotonic()
    run(
        "up",
        "-d",
        "--no-build",
        "gateway",
        "worker",
        "beat",
        "prometheus",
        timeout=args.container_timeout * 4,
    )
    containers = run("ps", "-q", "gateway").split()
    if len(containers) != 2:
        raise CheckFailed(f"{len(containers)} gateway containers, not 2")
    ports = sorted(int(sh(["docker", "port", c, "8000/tcp"]).split(":")[-1]) for c in containers)
    timings: dict[str, float] = {}
    wait("both replicas /ready", lambda: all(answers(f"http://127.0.0.1:{p}/ready") for p in ports), 300)
    timings["up_to_both_ready"] = round(time.monotonic() - began, 1)
    wait("both replicas healthy", lambda: all(health(c) == "healthy" for c in containers), 120)
    timings["replica_started_to_healthy"] = max(started_to_healthy(c) for c in containers)
    # through the entrypoint: it reads the *_FILE secrets (a bare `exec python manage.py` would not)
    issued = run("exec", "-T", "gateway", "gateway-entrypoint", "python", "manage.py", "issuekey",
                 "--tenant", "demo", "--name", run_id)  # fmt: skip
    key = issued.strip().splitlines()[-1].strip()
    request_ids = sorted(chat(f"http://127.0.0.1:{p}", key, f"replica {i}") for i, p in enumerate(ports))

    def recorded() -> list[str]:
        out = run("exec", "-T", "postgres", "psql", "-U", "gateway", "-d", "gateway", "-tAc",
                  "SELECT request_id FROM accounting_usagerecord ORDER BY request_id")  # fmt: skip
        return sorted(out.split())

    timings["usage_recorded"] = wait(
        "both usage records", lambda: recorded() == request_ids, args.usage_timeout
    )
    prometheus = f"http://127.0.0.1:{env['PROMETHEUS_PORT']}/api/v1/targets"

    def scraped_up() -> bool:
        try:
            active = httpx.get(prometheus, timeout=5).json()["data"]["activeTargets"]
        except (httpx.TransportError, ValueError):
            return False
        return len([t for t in active if t["labels"]["job"] == "llm-gateway" and t["health"] == "up"]) == 2

    timings["prometheus_both_up"] = wait("Prometheus scraping both replicas", scraped_up, 120)
    return {
        "compose": " ".join(compose_command()),
        "gateway_ports": ports,
        "answered": len(request_ids),
        "usage_records": len(recorded()),
        "prometheus_targets_up": 2,
        "timings_s": timings,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.docker_check", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--image", default="llm-gateway:local")
    parser.add_argument(
        "--database-url",
        default="postgres://postgres@127.0.0.1:5432/postgres",
        help="a role that may create databases (the check makes --database anew)",
    )
    parser.add_argument("--database", default="gw_docker_img")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--usage-timeout", type=float, default=90.0)
    parser.add_argument(
        "--container-timeout",
        type=float,
        default=900.0,
        help="seconds a container may take to start (the vfs storage driver copies the image)",
    )
    parser.add_argument("--compose", action="store_true", help="also run the Compose stack")
    parser.add_argument("--no-image", action="store_true", help="skip the image's roles on the host network")
    parser.add_argument("--keep", action="store_true", help="leave the containers and the stack running")
    args = parser.parse_args(argv)

    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        print("no Docker daemon answers (docker info)", file=sys.stderr)
        return 2
    if subprocess.run(["docker", "image", "inspect", args.image], capture_output=True).returncode != 0:
        print(f"no image {args.image}: build it first (deploy/offline/README.md)", file=sys.stderr)
        return 2
    run_id = secrets.token_hex(4)
    project = f"docker-check-{run_id}"
    started: list[str] = []
    report: dict[str, object] = {"run": run_id}
    status = 0
    try:
        if not args.no_image:
            report["image"] = check_image(args, run_id, started)
        if args.compose:
            report["compose"] = check_compose(args, run_id, project)
    except (CheckFailed, subprocess.TimeoutExpired) as failed:
        report["failed"] = str(failed)
        status = 1
    finally:
        if not args.keep:
            for name in started:
                subprocess.run(
                    ["docker", "rm", "-f", "-v", name], capture_output=True, timeout=args.container_timeout
                )
            if args.compose:
                subprocess.run(
                    [*compose_command(), "-p", project, "--env-file", str(OFFLINE_DIR / "offline.env"),
                     "-f", str(COMPOSE_DIR / "compose.yaml"), "-f", str(OFFLINE_DIR / "compose.offline.yaml"),
                     "down", "-v", "--remove-orphans"],
                    capture_output=True, timeout=args.container_timeout,
                    env={**os.environ, "COMPOSE_HTTP_TIMEOUT": str(int(args.container_timeout))},
                )  # fmt: skip
    print(json.dumps(report, indent=2))
    return status


if __name__ == "__main__":
    sys.exit(main())
