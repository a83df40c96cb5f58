"""End-to-end fixtures: the fake OpenAI upstream, and a gateway (Daphne subprocess) configured to
proxy to it, with an SDK client and a raw httpx client holding a fresh gateway key."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal

import httpx
import openai
import pytest
import redis
from django.conf import settings

from accounting.models import UsageRecord
from tests.conftest import CANARY, GatewayProcess, IssuedKey, openai_provider_yaml, wait_for
from tests.e2e.messages_gateway import MessagesStarter
from tests.e2e.vendor_gateway import VendorStarter
from tests.fakes.openai_upstream import FakeOpenAIUpstream

PROVIDER = "fake-openai"
MODEL = "gpt-4o-mini"
UPSTREAM_MODEL = "gpt-4o-mini-upstream"
UPSTREAM_KEY_ENV = "GW_E2E_FAKE_OPENAI_KEY"
# Deployment prices of MODEL in openai_provider_yaml, dollars per million tokens.
PRICE_INPUT = Decimal("0.15")
PRICE_OUTPUT = Decimal("0.60")
PRICE_CACHED = Decimal("0.075")


def expected_cost(prompt: int, completion: int, cached: int = 0) -> Decimal:
    return (
        Decimal(prompt - cached) * PRICE_INPUT
        + Decimal(cached) * PRICE_CACHED
        + Decimal(completion) * PRICE_OUTPUT
    ) / Decimal(1_000_000)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def error_body(
    message: str, type_: str, *, param: str | None = None, code: str | None = None
) -> dict[str, object]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def assert_gateway_headers(response: httpx.Response, *, request_id: str | None = None) -> str:
    """Every gateway response carries ``x-request-id`` (the client's when well-formed, else the
    gateway's ``req_`` + 24 hex) and a numeric ``x-gateway-overhead-ms``; returns the id."""
    rid = response.headers["x-request-id"]
    if request_id is not None:
        assert rid == request_id
    else:
        assert rid.startswith("req_")
        assert len(rid) == 28
        int(rid[4:], 16)
    assert float(response.headers["x-gateway-overhead-ms"]) >= 0.0
    return rid


def records(count: int) -> list[UsageRecord]:
    """Wait until ``count`` usage records exist; return them oldest first."""
    wait_for(lambda: UsageRecord.objects.count() >= count)
    rows = list(UsageRecord.objects.order_by("created_at", "id"))
    assert len(rows) == count
    return rows


@pytest.fixture
def upstreams() -> Iterator[tuple[FakeOpenAIUpstream, FakeOpenAIUpstream]]:
    """Two fake OpenAI upstreams, for routing between deployments."""
    a, b = FakeOpenAIUpstream().start(), FakeOpenAIUpstream().start()
    yield a, b
    a.stop()
    b.stop()


def quota_spend(prefix: str, *, quota_id: int, tenant_id: int) -> tuple[int, int]:
    """A cost quota's (spent, reserved) micro-dollars of the current period, read from Redis."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}{{t{tenant_id}}}:q{quota_id}:*"))
        hashes = [k for k in keys if not k.endswith(b":leases")]
        assert len(hashes) == 1
        spent, reserved = client.hmget(hashes[0], "spent", "reserved")
        return int(spent or 0), int(reserved or 0)
    finally:
        client.close()


@pytest.fixture
def openai_upstream() -> Iterator[FakeOpenAIUpstream]:
    fake = FakeOpenAIUpstream().start()
    yield fake
    fake.stop()


@dataclass
class Proxy:
    """A running gateway proxying MODEL to the fake upstream."""

    gateway: GatewayProcess
    upstream: FakeOpenAIUpstream
    key: IssuedKey
    upstream_key: str
    client: openai.OpenAI  # the official SDK, no retries
    http: httpx.Client  # raw client on the gateway's base URL, authenticated with ``key``

    def chat_body(self, content: str = "Say hello", **fields: object) -> dict[str, object]:
        return {"model": MODEL, "messages": [{"role": "user", "content": content}], **fields}


@pytest.fixture
def start_proxy(
    openai_upstream: FakeOpenAIUpstream,
    gateway_factory: Callable[..., GatewayProcess],
    configure: Callable[[str], None],
    make_key: Callable[..., IssuedKey],
) -> Iterator[Callable[..., Proxy]]:
    """``start_proxy(extra_yaml="", key_models=None, **gateway_env)``: configure the provider
    PROVIDER (API key from UPSTREAM_KEY_ENV) serving MODEL from the fake upstream, plus any
    ``extra_yaml``; issue a key for tenant "acme"; start a gateway."""
    clients: list[openai.OpenAI | httpx.Client] = []

    def _start(*, extra_yaml: str = "", key_models: list[str] | None = None, **env: str) -> Proxy:
        configure(
            openai_provider_yaml(
                name=PROVIDER, base_url=openai_upstream.base_url, model=MODEL, api_key_env=UPSTREAM_KEY_ENV
            )
        )
        if extra_yaml:
            configure(extra_yaml)
        key = make_key("acme", models=key_models)
        upstream_key = CANARY  # must never show in a log or trace (tests/conftest.py)
        gateway = gateway_factory(**{UPSTREAM_KEY_ENV: upstream_key, **env})
        client = openai.OpenAI(base_url=f"{gateway.base_url}/v1", api_key=key.raw, max_retries=0, timeout=30)
        http = httpx.Client(
            base_url=gateway.base_url, headers={"Authorization": f"Bearer {key.raw}"}, timeout=30
        )
        clients.extend([client, http])
        return Proxy(
            gateway=gateway,
            upstream=openai_upstream,
            key=key,
            upstream_key=upstream_key,
            client=client,
            http=http,
        )

    yield _start
    for item in clients:
        item.close()


@pytest.fixture
def start_vendor(gateway_factory, configure, make_key):
    """``start_vendor(provider_yaml=..., model=..., upstream_model=..., env=...)``: a gateway in
    front of one fake vendor upstream (see tests/e2e/vendor_gateway.py)."""
    starter = VendorStarter(gateway_factory=gateway_factory, configure=configure, make_key=make_key)
    yield starter
    starter.close()


@pytest.fixture
def start_messages(gateway_factory, configure, make_key):
    """``start_messages(config_yaml, env=...)``: a gateway serving the Messages API with the
    anthropic SDK on it (see tests/e2e/messages_gateway.py)."""
    starter = MessagesStarter(gateway_factory=gateway_factory, configure=configure, make_key=make_key)
    yield starter
    starter.close()
