"""The servers under test, each one Daphne process on an inherited socket pinned to its CPU
(or, for the scaling scenario, ``manage.py serve --workers N``, unpinned):

- a gateway per profile (``bench.profiles``): a fresh installation in a data directory of its
  own (SQLite), with ``REDIS_URL`` and a Redis prefix of its own when the profile uses Redis,
  configured with the ``applyconfig`` YAML format (providers, models, the profile's tier,
  tenant and quota), one key issued with ``issuekey``;
- the reference: ``bench.baseline_app``, a bare Django view in front of one upstream."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.proc import Service, child_pids, pinned, start_service, wait_until
from bench.profiles import TENANT, Profile
from bench.records import Tally
from bench.upstreams import ROOT, Upstream, Upstreams, listening_socket

MODELS = {"fixed": "bench-fixed", "delay": "bench-delay", "stream": "bench-stream"}
# Settings the harness decides; anything else the caller's shell has set is dropped.
_DROPPED_PREFIXES = ("GATEWAY_",)
_DROPPED = (
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "PROMETHEUS_MULTIPROC_DIR",
    "SECRET_KEY",
    "DJANGO_SETTINGS_MODULE",
)
_LISTENING = re.compile(r"gateway listening on http://127\.0\.0\.1:(\d+)")


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
    name: str
    profile: Profile
    data_dir: Path
    redis_prefix: str | None
    workers: int | None = None  # None: one Daphne process; N: ``serve --workers N`` (its children serve)
    tally: Tally = field(default_factory=Tally)

    @property
    def database(self) -> Path:
        return self.data_dir / "gateway.sqlite3"

    def pids(self) -> list[int]:
        """The processes that serve: the Daphne process, or the workers of ``serve``."""
        return [self.service.pid] if self.workers is None else child_pids(self.service.pid)


def gateway_env(
    data_dir: Path, *, redis_url: str | None = None, redis_prefix: str | None = None
) -> dict[str, str]:
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
    if redis_url:
        env["REDIS_URL"] = redis_url
        env["GATEWAY_REDIS_PREFIX"] = redis_prefix or "bench:"
        # A Redis failure must show as errors (503), not as requests admitted without limits.
        env["GATEWAY_ON_REDIS_ERROR"] = "closed"
    return env


def gateway_config(upstreams: Upstreams, profile: Profile) -> str:
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
    return "\n".join(lines) + "\n" + profile.config_yaml()


def manage(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def prepare_database(*, env: dict[str, str], upstreams: Upstreams, profile: Profile, workdir: Path) -> str:
    """Migrate, apply the providers, models, tier, tenant and quota; return a fresh raw key."""
    manage("migrate", "--noinput", "-v", "0", env=env)
    config = workdir / "gateway.yaml"
    config.write_text(gateway_config(upstreams, profile))
    manage("applyconfig", str(config), env=env)
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


@dataclass(frozen=True)
class Installation:
    """A prepared data directory: the environment to run the gateway with, and its key."""

    name: str
    profile: Profile
    env: dict[str, str]
    key: str
    data_dir: Path
    redis_prefix: str | None


def install(
    name: str,
    profile: Profile,
    *,
    upstreams: Upstreams,
    workdir: Path,
    redis_url: str,
    redis_prefix: str,
) -> Installation:
    """A fresh installation of ``profile`` in ``workdir/name``."""
    home = workdir / name
    home.mkdir()
    data_dir = home / "data"
    prefix = redis_prefix if profile.redis else None
    env = gateway_env(data_dir, redis_url=redis_url if profile.redis else None, redis_prefix=prefix)
    key = prepare_database(env=env, upstreams=upstreams, profile=profile, workdir=home)
    return Installation(name, profile, env, key, data_dir, prefix)


def start_gateway(installation: Installation, *, cpu: int | None, workdir: Path) -> Gateway:
    i = installation
    server = start_daphne(i.name, "gateway_site.asgi:application", env=i.env, cpu=cpu, workdir=workdir)
    return Gateway(
        base_url=server.base_url,
        service=server.service,
        key=i.key,
        name=i.name,
        profile=i.profile,
        data_dir=i.data_dir,
        redis_prefix=i.redis_prefix,
    )


def _serve_port(service: Service) -> int | None:
    match = _LISTENING.search(service.log_tail(200))
    return int(match.group(1)) if match else None


def start_serve(installation: Installation, *, workers: int, cpus: str | None, workdir: Path) -> Gateway:
    """``manage.py serve --workers N`` on a free port, on ``cpus`` (a taskset list); ready when
    it answers and all N workers are running."""
    i = installation
    argv = [
        sys.executable,
        "manage.py",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--workers",
        str(workers),
    ]
    service = start_service(i.name, pinned(cpus, argv), log_dir=workdir, cwd=ROOT, env=i.env)
    try:
        wait_until(lambda: _serve_port(service) is not None, service=service, timeout=60)
        base_url = f"http://127.0.0.1:{_serve_port(service)}"
        wait_until(
            lambda: _live(base_url) and len(child_pids(service.pid)) == workers, service=service, timeout=60
        )
    except BaseException:
        service.stop()
        raise
    return Gateway(
        base_url=base_url,
        service=service,
        key=i.key,
        name=i.name,
        profile=i.profile,
        data_dir=i.data_dir,
        redis_prefix=i.redis_prefix,
        workers=workers,
    )


def start_baseline(upstream: Upstream, *, cpu: int | None, workdir: Path) -> DaphneServer:
    env = {**gateway_env(workdir / "baseline-data"), "BENCH_UPSTREAM_URL": upstream.chat_url}
    return start_daphne(
        f"baseline-{upstream.name}", "bench.baseline_app:application", env=env, cpu=cpu, workdir=workdir
    )
