"""The servers under test, each one Daphne process on an inherited socket pinned to its CPU:

- the gateway: a fresh embedded-default installation (SQLite in a temporary data directory, no
  Redis), configured with the ``applyconfig`` YAML format, one key issued with the management
  commands;
- the reference: ``bench.baseline_app``, a bare Django view in front of one upstream."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.proc import Service, pinned, start_service, wait_until
from bench.upstreams import ROOT, Upstream, Upstreams, listening_socket

MODELS = {"fixed": "bench-fixed", "delay": "bench-delay", "stream": "bench-stream"}
TENANT = "bench"
# Settings the harness decides; anything else the caller's shell has set is dropped.
_DROPPED_PREFIXES = ("GATEWAY_",)
_DROPPED = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DJANGO_SETTINGS_MODULE")


@dataclass
class DaphneServer:
    base_url: str
    service: Service

    @property
    def chat_url(self) -> str:
        return f"{self.base_url}/v1/chat/completions"


@dataclass
class Gateway(DaphneServer):
    key: str


def gateway_env(data_dir: Path) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in _DROPPED and not name.startswith(_DROPPED_PREFIXES)
    }
    env.update(
        {
            "GATEWAY_DATA_DIR": str(data_dir),
            "DJANGO_SETTINGS_MODULE": "gateway_site.settings",
            "GATEWAY_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def gateway_config(upstreams: Upstreams) -> str:
    lines = ["providers:"]
    for upstream in upstreams.all():
        lines += [
            f"  - name: bench-{upstream.name}",
            "    kind: openai",
            f"    base_url: {upstream.base_url}",
            '    api_key_env: ""',
        ]
    lines.append("models:")
    for upstream in upstreams.all():
        lines += [
            f"  - name: {MODELS[upstream.name]}",
            "    deployments:",
            f"      - provider: bench-{upstream.name}",
            f"        model: upstream-{upstream.name}",
            '        input_per_million: "0.15"',
            '        output_per_million: "0.60"',
        ]
    return "\n".join(lines) + "\n"


def manage(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def prepare_database(*, env: dict[str, str], upstreams: Upstreams, workdir: Path) -> str:
    """Migrate, apply the providers and models, create the tenant; return a fresh raw key."""
    manage("migrate", "--noinput", "-v", "0", env=env)
    config = workdir / "gateway.yaml"
    config.write_text(gateway_config(upstreams))
    manage("applyconfig", str(config), env=env)
    manage("createtenant", TENANT, env=env)
    output = manage("issuekey", "--tenant", TENANT, "--name", "bench", env=env)
    return output.strip().splitlines()[-1].strip()


def _live(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/live", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def start_daphne(
    name: str, application: str, *, env: dict[str, str], cpu: int | None, workdir: Path
) -> DaphneServer:
    sock = listening_socket()
    port = sock.getsockname()[1]
    daphne = [sys.executable, "-m", "daphne", "--fd", str(sock.fileno()), "-v", "0", application]
    service = start_service(
        name, pinned(cpu, daphne), log_dir=workdir, cwd=ROOT, env=env, pass_fds=[sock.fileno()]
    )
    sock.close()
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _live(base_url), service=service, timeout=60)
    except BaseException:
        service.stop()
        raise
    return DaphneServer(base_url=base_url, service=service)


def start_gateway(*, env: dict[str, str], key: str, cpu: int | None, workdir: Path) -> Gateway:
    server = start_daphne("gateway", "gateway_site.asgi:application", env=env, cpu=cpu, workdir=workdir)
    return Gateway(base_url=server.base_url, service=server.service, key=key)


def start_baseline(upstream: Upstream, *, cpu: int | None, workdir: Path) -> DaphneServer:
    env = {**gateway_env(workdir / "baseline-data"), "BENCH_UPSTREAM_URL": upstream.chat_url}
    return start_daphne(
        f"baseline-{upstream.name}", "bench.baseline_app:application", env=env, cpu=cpu, workdir=workdir
    )
