"""Shared fixtures: control-plane factories, a Daphne gateway subprocess on a loopback port,
and per-test Redis prefixes. Postgres and Redis come from DATABASE_URL / REDIS_URL (``make
test`` points them at the local servers); under CI a missing service fails, never skips."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis
from django.conf import settings
from django.db import connection

from gateway_site.console.declarative import apply_config, parse_config
from quotas.models import Tenant
from quotas.services import key_issue, tenant_create

ROOT = Path(__file__).resolve().parent.parent

# A secret that must never appear in any gateway log or trace of the session: the e2e fixtures
# give it to the gateway as the upstream provider's API key, and tests put it in prompts.
CANARY = "sk-canary-" + secrets.token_hex(16)


@dataclass
class TelemetryOutputs:
    """Every gateway log file and every OTLP payload produced in this session (in this xdist
    worker), scanned for the canary at the end."""

    log_paths: list[Path] = field(default_factory=list)
    payload_sources: list[Callable[[], list[bytes]]] = field(default_factory=list)

    def leaks(self, secret: str) -> list[str]:
        needle = secret.encode()
        found = [str(p) for p in self.log_paths if p.exists() and needle in p.read_bytes()]
        for source in self.payload_sources:
            found.extend("OTLP payload" for payload in source() if needle in payload)
        return found


@pytest.fixture(autouse=True)
def _own_django_cache_keys(settings) -> None:
    """Each test its own keys in Django's cache: with REDIS_URL it is one Redis shared by every
    test of the run (and local memory lives as long as the worker), so a page's cached
    aggregates would otherwise outlive the test that made them."""
    settings.CACHES = {
        name: {**conf, "KEY_PREFIX": f"{conf.get('KEY_PREFIX', '')}t{secrets.token_hex(4)}:"}
        for name, conf in settings.CACHES.items()
    }


@pytest.fixture(scope="session", autouse=True)
def telemetry_outputs() -> Iterator[TelemetryOutputs]:
    """Fails the session (an error at the last test's teardown) when the canary leaked."""
    outputs = TelemetryOutputs()
    yield outputs
    leaks = outputs.leaks(CANARY)
    if leaks:
        pytest.fail(f"the canary secret appeared in {len(leaks)} output(s): {sorted(set(leaks))}")


def redis_url() -> str:
    """The Redis of the test run; a missing one fails under CI and skips elsewhere."""
    url = settings.REDIS_URL or os.environ.get("REDIS_URL", "")
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail("REDIS_URL is not set")
        pytest.skip("REDIS_URL is not set")
    return url


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A Redis key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"gwtest:{secrets.token_hex(6)}:"
    yield prefix
    if settings.REDIS_URL:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5)
        try:
            stale = list(client.scan_iter(match=f"{prefix}*", count=1000))
            if stale:
                client.delete(*stale)
        finally:
            client.close()


@dataclass
class IssuedKey:
    raw: str
    tenant: Tenant
    key_id: int


@pytest.fixture
def make_key():
    def _make(tenant: str = "acme", *, name: str = "test", models: list[str] | None = None) -> IssuedKey:
        owner = Tenant.objects.filter(name=tenant).first() or tenant_create(name=tenant)
        key, raw = key_issue(tenant=owner, name=name, allowed_models=models)
        return IssuedKey(raw=raw, tenant=owner, key_id=key.pk)

    return _make


@pytest.fixture
def configure():
    """Apply a YAML gateway configuration (the applyconfig format) to the test database."""

    def _apply(text: str) -> None:
        apply_config(parse_config(text))

    return _apply


def openai_provider_yaml(
    *, name: str, base_url: str, model: str = "gpt-4o-mini", api_key_env: str = ""
) -> str:
    return f"""
providers:
  - name: {name}
    kind: openai
    base_url: {base_url}
    api_key_env: "{api_key_env}"
models:
  - name: {model}
    deployments:
      - provider: {name}
        model: {model}-upstream
        input_per_million: "0.15"
        output_per_million: "0.60"
        cached_input_per_million: "0.075"
"""


def mock_echo_yaml(*, input_per_million: str = "0", output_per_million: str = "0") -> str:
    """The embedded mock provider serving the model "mock-echo" (it echoes the prompt at once);
    declared free when both prices are zero."""
    free = (input_per_million, output_per_million) == ("0", "0")
    return f"""
providers:
  - name: mock
    kind: mock
    options: {{chunk_delay_ms: 0}}
models:
  - name: mock-echo
    deployments:
      - provider: mock
        model: mock-echo
        input_per_million: "{input_per_million}"
        output_per_million: "{output_per_million}"
        free: {"true" if free else "false"}
"""


def database_url_for_subprocess() -> str:
    """The URL of the database this test runs against (pytest-django's test database)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


@dataclass
class GatewayProcess:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def manage(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a management command in a separate process against the gateway's database and
        settings; it must succeed."""
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result

    def stop(self, timeout: float = 20.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


def start_gateway(
    *,
    tmp_path: Path,
    redis_prefix: str,
    extra_env: dict[str, str] | None = None,
    application: str = "gateway_site.asgi:application",
) -> GatewayProcess:
    """Start ``daphne gateway_site.asgi:application`` (or another ASGI application) on a socket
    bound here (no port race)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(512)
    port = listener.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_subprocess(),
        "SECRET_KEY": settings.SECRET_KEY,
        "GATEWAY_DATA_DIR": str(tmp_path / "gateway-data"),
        "GATEWAY_REDIS_PREFIX": redis_prefix,
        "GATEWAY_USAGE_FLUSH_SECONDS": "0.05",
        "GATEWAY_USAGE_DRAIN_SECONDS": "0.05",
        "GATEWAY_CONFIG_POLL_SECONDS": "0.1",
        # Each upstream answer reaches the client as mapped (the error-mapping tests); the routing
        # tests turn retries on.
        "GATEWAY_RETRIES": "0",
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    log_path = tmp_path / f"daphne-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "--fd",
                str(listener.fileno()),
                "-v",
                "1",
                application,
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=[listener.fileno()],
        )
    listener.close()
    gateway = GatewayProcess(base_url=f"http://127.0.0.1:{port}", process=process, log_path=log_path, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gateway exited early:\n{gateway.log()}")
        try:
            if httpx.get(f"{gateway.base_url}/live", timeout=1).status_code == 200:
                return gateway
        except httpx.TransportError:
            time.sleep(0.05)
    gateway.stop()
    raise RuntimeError(f"gateway did not become live:\n{gateway.log()}")


@pytest.fixture
def gateway_factory(transactional_db, tmp_path, redis_prefix, telemetry_outputs) -> Iterator:
    """Start gateway subprocesses against the test database; all are stopped after the test.
    Their logs are scanned for the canary at the end of the session."""
    started: list[GatewayProcess] = []

    def _start(*, application: str = "gateway_site.asgi:application", **extra_env: str) -> GatewayProcess:
        gateway = start_gateway(
            tmp_path=tmp_path, redis_prefix=redis_prefix, extra_env=extra_env, application=application
        )
        started.append(gateway)
        telemetry_outputs.log_paths.append(gateway.log_path)
        return gateway

    yield _start
    for gateway in started:
        gateway.stop()


def wait_for(predicate, *, timeout: float = 10.0, interval: float = 0.05):
    """Poll ``predicate`` until it returns a truthy value; return it, or fail the test."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(interval)


@pytest.fixture(scope="session")
def _memory_exporter():
    """The process's OpenTelemetry SDK for in-process tests: spans kept in memory. The global
    tracer provider can be set once per process, so it is set here, once, on first use."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return exporter


@pytest.fixture
def memory_spans(_memory_exporter, settings):
    """Tracing on (``GATEWAY_TRACING``) with finished spans collected in memory, for this test."""
    settings.GATEWAY_TRACING = True
    _memory_exporter.clear()
    yield _memory_exporter
    _memory_exporter.clear()


def platform_staff(username: str, **fields):
    """A staff user who sees every tenant (the "Platform staff" group, ``quotas.tenancy``): what
    the console's platform pages (spend dashboard, routing overview, live tail) require."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from quotas.tenancy import PLATFORM_STAFF_GROUP

    user = get_user_model().objects.create_user(username, is_staff=True, **fields)
    user.groups.add(Group.objects.get(name=PLATFORM_STAFF_GROUP))
    return user


@contextlib.contextmanager
def signed_in(base_url: str, username: str, password: str) -> Iterator[httpx.Client]:
    """An HTTP client signed in to a running gateway's admin with a password, as a browser
    would (the login form with its CSRF token)."""
    with httpx.Client(base_url=base_url, timeout=30) as browser:
        browser.get("/admin/login/")
        login = browser.post(
            "/admin/login/?next=/admin/",
            data={
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": browser.cookies["csrftoken"],
                "next": "/admin/",
            },
        )
        assert login.status_code == 302, login.text[:2000]
        yield browser
