"""The chaos run's installation, all on loopback and all its own: a redis-server with persistence
(``bench.redis_server``), a PostgreSQL cluster (``bench.postgres_cluster``), the upstream that
can be killed (``bench.chaos_upstream``), and the gateway as ``manage.py serve --workers 2``
on them: migrated, configured with ``applyconfig`` (one model on the upstream with a short
``timeout_seconds``, a tenant with a rate tier and a hard monthly quota that never refuses),
one key issued. No Celery broker: the workers drain the outbox themselves."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.chaos_upstream import ChaosUpstream
from bench.gateway import Gateway, Installation, gateway_env, manage, start_serve
from bench.postgres_cluster import OwnedPostgres
from bench.profiles import FULL
from bench.redis_server import OwnedRedis

DATABASE = "gateway"
PREFIX = "chaos:"
MODEL = "chaos"
TENANT = "chaos"
WORKERS = 2
GATEWAY_NAME = "chaos-gateway"  # its log: <workdir>/chaos-gateway.log
# The model's and the provider's timeout_seconds: with the margin, the reservations' lease (a
# model without a deadline of its own has GATEWAY_UPSTREAM_TIMEOUT_SECONDS, 600 s, for its
# retries, and its lease is that long whatever its provider's timeout).
UPSTREAM_TIMEOUT_S = 5
LEASE_MARGIN_S = 5  # GATEWAY_LEASE_MARGIN_SECONDS
LEASE_S = UPSTREAM_TIMEOUT_S + LEASE_MARGIN_S
MAX_IN_FLIGHT = 64
# High enough never to refuse at the load of the run, parallel slots leaked for a lease
# included; the hard quota likewise (a request costs under $0.00002).
REQUESTS_PER_MINUTE = 1_000_000
TOKENS_PER_MINUTE = 100_000_000
MAX_PARALLEL = 2_000
QUOTA_LIMIT_USD = "1000000.00"
PRICES = ('"0.15"', '"0.60"')  # input, output per million tokens
# Settings of the run (each is documented in the README's configuration table).
RUN_SETTINGS = {
    "GATEWAY_MAX_IN_FLIGHT": str(MAX_IN_FLIGHT),
    "GATEWAY_LEASE_MARGIN_SECONDS": str(LEASE_MARGIN_S),
    # Outbox entries a killed worker had read are claimed by the other after this long.
    "GATEWAY_USAGE_CLAIM_IDLE_SECONDS": "5",
    # An upstream that was down is tried again soon after it is back, not 30 s later.
    "GATEWAY_BREAKER_OPEN_SECONDS": "2",
    "GATEWAY_ACCESS_LOG": "off",
    # The run's own reconcilequotas is the one reported; the in-process beat's would run first.
    "GATEWAY_RECONCILE_SECONDS": "3600",
}


def gateway_yaml(upstream_base_url: str) -> str:
    return f"""providers:
  - name: chaos-upstream
    kind: openai
    base_url: {upstream_base_url}
    api_key_env: ""
    timeout_seconds: {UPSTREAM_TIMEOUT_S}
models:
  - name: {MODEL}
    timeout_seconds: {UPSTREAM_TIMEOUT_S}
    deployments:
      - provider: chaos-upstream
        model: upstream-chaos
        input_per_million: {PRICES[0]}
        output_per_million: {PRICES[1]}
tiers:
  - name: chaos
    algorithm: sliding_window
    requests_per_minute: {REQUESTS_PER_MINUTE}
    tokens_per_minute: {TOKENS_PER_MINUTE}
    max_parallel: {MAX_PARALLEL}
tenants:
  - name: {TENANT}
    tier: chaos
    quotas:
      - period: month
        limit_usd: "{QUOTA_LIMIT_USD}"
        hard: true
"""


@dataclass
class ChaosInstallation:
    """Everything the run owns; ``stop`` ends it all (the gateway first, so it drains)."""

    workdir: Path
    redis: OwnedRedis
    postgres: OwnedPostgres
    upstream: ChaosUpstream
    env: dict[str, str]
    key: str
    gateway: Gateway | None = None

    @property
    def database_url(self) -> str:
        return self.postgres.url(DATABASE)

    @property
    def spool_path(self) -> Path:
        return Path(self.env["GATEWAY_USAGE_SPOOL_PATH"])

    def describe(self) -> dict[str, object]:
        return {
            "redis": f"redis-server on 127.0.0.1:{self.redis.port}, appendonly yes, appendfsync always",
            "postgres": f"initdb cluster on 127.0.0.1:{self.postgres.port} ({self.postgres.bin})",
            "upstream": f"aiohttp.web on {self.upstream.base_url} (JSON after 50 ms, or SSE with usage)",
            "gateway": f"manage.py serve --workers {WORKERS}, no Celery broker",
            "settings": {**RUN_SETTINGS, "GATEWAY_ON_REDIS_ERROR": self.env["GATEWAY_ON_REDIS_ERROR"]},
            "provider_timeout_seconds": UPSTREAM_TIMEOUT_S,
            "lease_seconds": LEASE_S,
            "tier": {
                "algorithm": "sliding_window",
                "requests_per_minute": REQUESTS_PER_MINUTE,
                "tokens_per_minute": TOKENS_PER_MINUTE,
                "max_parallel": MAX_PARALLEL,
            },
            "quota": {"period": "month", "limit_usd": QUOTA_LIMIT_USD, "hard": True},
        }

    def stop(self, *, keep: bool) -> int | None:
        """Stop everything; the gateway's exit status (None if it was not running)."""
        status = None
        try:
            if self.gateway is not None and self.gateway.service.alive():
                self.gateway.service.stop(timeout=30)
                status = self.gateway.service.process.returncode
        finally:
            try:
                self.upstream.stop()
            finally:
                try:
                    self.redis.destroy(keep=keep)
                finally:
                    self.postgres.destroy(keep=keep)
        return status


def install(workdir: Path, *, on_redis_error: str) -> ChaosInstallation:
    """Start the owned services and prepare the gateway's database; the gateway is not started."""
    redis_server = OwnedRedis(parent=workdir)
    postgres = OwnedPostgres()  # not under workdir: the postgres user must reach its directory
    upstream = ChaosUpstream(log_dir=workdir)
    owned = ChaosInstallation(
        workdir=workdir, redis=redis_server, postgres=postgres, upstream=upstream, env={}, key=""
    )
    try:
        redis_server.start()
        postgres.init(DATABASE)
        upstream.start()
        data_dir = workdir / "gateway-data"
        env = gateway_env(data_dir, redis_url=redis_server.url, redis_prefix=PREFIX)
        env.update(RUN_SETTINGS)
        env["DATABASE_URL"] = postgres.url(DATABASE)
        env["GATEWAY_ON_REDIS_ERROR"] = on_redis_error
        env["GATEWAY_USAGE_SPOOL_PATH"] = str(data_dir / "usage-spool.jsonl")
        owned.env = env
        manage("migrate", "--noinput", "-v", "0", env=env)
        config = workdir / "gateway.yaml"
        config.write_text(gateway_yaml(upstream.base_url))
        manage("applyconfig", str(config), env=env)
        owned.key = (
            manage("issuekey", "--tenant", TENANT, "--name", "chaos", env=env).strip().splitlines()[-1]
        )
    except BaseException:
        owned.stop(keep=True)
        raise
    return owned


def start_gateway(owned: ChaosInstallation) -> Gateway:
    installation = Installation(
        name=GATEWAY_NAME,
        profile=FULL,
        env=owned.env,
        key=owned.key,
        data_dir=Path(owned.env["GATEWAY_DATA_DIR"]),
        redis_prefix=PREFIX,
    )
    owned.gateway = start_serve(installation, workers=WORKERS, cpus=None, workdir=owned.workdir)
    return owned.gateway
