"""The roles the Kubernetes manifests run, started on this machine from the entrypoint with the
environment the manifests give them (the small overlay's ConfigMap, and a Secret of the test's
own: its database, Redis and broker): the migrations Job, the applyconfig Job (the rendered
ConfigMap's gateway.yaml), two gateways, a Celery worker and beat. A request through each
gateway is answered, and its usage reaches the database through the outbox drained by the
worker on beat's schedule."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from django.conf import settings

from accounting.models import UsageRecord
from tests.conftest import database_url_for_subprocess, wait_for
from tests.deploy.test_artefacts import ROOT, by_kind, render

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Roles:
    """Processes started from the entrypoint, each ended (by its pid) at the end."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs, self.started = env, logs, []

    def run(self, args: list[str], **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", str(ENTRYPOINT), *args], cwd=ROOT, env={**self.env, **extra}, capture_output=True,
            text=True, timeout=180,
        )  # fmt: skip

    def start(self, name: str, args: list[str], **extra: str) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(
                ["sh", str(ENTRYPOINT), *args], cwd=ROOT, env={**self.env, **extra}, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.started.append(process)
        return process

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def stop(self) -> None:
        for process in self.started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)  # the role's own process group
        for process in self.started:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


def manifest_env(docs: list[dict]) -> dict[str, str]:
    [config] = [d for n, d in by_kind(docs, "ConfigMap").items() if n.startswith("llm-gateway-env")]
    return dict(config["data"])


def args_of(workload: dict) -> list[str]:
    return workload["spec"]["template"]["spec"]["containers"][0]["args"]


@pytest.fixture
def roles(tmp_path, redis_prefix) -> Iterator[tuple[Roles, list[dict]]]:
    docs = render("small")
    config_file = tmp_path / "gateway.yaml"
    [config] = [d for n, d in by_kind(docs, "ConfigMap").items() if n.startswith("llm-gateway-config")]
    config_file.write_text(config["data"]["gateway.yaml"])
    queue = f"gwtest-{secrets.token_hex(4)}"
    env = {
        "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}",
        **manifest_env(docs),
        # the Secret's keys, this test's values
        "DATABASE_URL": database_url_for_subprocess(),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": settings.REDIS_URL,
        "SECRET_KEY": settings.SECRET_KEY,
        # where the pod has its volumes and mounts, and what keeps this test apart
        "GATEWAY_DATA_DIR": str(tmp_path / "data"),
        "GATEWAY_CONFIG_FILE": str(config_file),
        "GATEWAY_REDIS_PREFIX": redis_prefix,
        "GATEWAY_CELERY_QUEUE": queue,
        "GATEWAY_USAGE_DRAIN_SECONDS": "0.2",
        "GATEWAY_MOCK_CHUNK_DELAY_MS": "0",
    }
    owned = Roles(env, tmp_path)
    yield owned, docs
    owned.stop()
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(queue)
    client.close()


def test_the_manifests_roles_start_here_and_serve_and_record(roles):
    owned, docs = roles
    jobs, deployments = by_kind(docs, "Job"), by_kind(docs, "Deployment")

    for job in ("llm-gateway-migrate", "llm-gateway-applyconfig"):
        done = owned.run(args_of(jobs[job]))
        assert done.returncode == 0, done.stdout + done.stderr
    issued = owned.run(["python", "manage.py", "issuekey", "--tenant", "demo", "--name", "roles"])
    assert issued.returncode == 0, issued.stderr
    key = issued.stdout.strip().splitlines()[-1].strip()

    ports = [free_port(), free_port()]
    for i, port in enumerate(ports):
        owned.start(f"gateway{i}", args_of(deployments["llm-gateway"]), PORT=str(port), HOST="127.0.0.1")
    owned.start("worker", args_of(deployments["llm-gateway-worker"]))
    owned.start("beat", args_of(deployments["llm-gateway-beat"]))

    answered = []
    for i, port in enumerate(ports):
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda base=base: _ready(base), timeout=60)
        response = httpx.post(
            f"{base}/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={"model": "mock-echo", "messages": [{"role": "user", "content": f"gateway {i}"}]},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        assert (
            response.json()["choices"][0]["message"]["content"] == f"This is mock-echo. You said: gateway {i}"
        )
        answered.append(response.headers["x-request-id"])

    # with a broker the gateways only append to the outbox; the worker drains it on beat's schedule
    wait_for(lambda: UsageRecord.objects.count() == 2, timeout=60)
    assert sorted(UsageRecord.objects.values_list("request_id", flat=True)) == sorted(answered)
    assert "accounting.tasks.drain_usage_outbox" in owned.log("worker")
    assert "Scheduler: Sending due task drain-usage-outbox" in owned.log("beat")


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/ready", timeout=2).status_code == 200
    except httpx.TransportError:
        time.sleep(0.2)
        return False
