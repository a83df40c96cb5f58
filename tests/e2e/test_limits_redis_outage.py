"""Redis stopped mid-test (a redis-server of the test's own, never the shared one): a gateway
set to fail open keeps serving without limits and says so in its log; one set to fail closed
answers 503; both enforce limits again by themselves once Redis is back."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import redis

from tests.conftest import GatewayProcess, openai_provider_yaml, wait_for
from tests.e2e.conftest import MODEL, PROVIDER, UPSTREAM_KEY_ENV, closed_port

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


class RedisServer:
    def __init__(self) -> None:
        self.port = closed_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        self._process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
        wait_for(lambda: self._ping(client), timeout=10)
        client.close()
        return self

    @staticmethod
    def _ping(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(10)


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


TIER = """
tiers:
  - name: roomy
    algorithm: fixed_window
    requests_per_minute: 1000
tenants:
  - name: acme
    tier: roomy
"""


def chat(gateway: GatewayProcess, raw_key: str) -> httpx.Response:
    return httpx.post(
        f"{gateway.base_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {raw_key}"},
        json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    )


def enforced(response: httpx.Response) -> bool:
    return response.status_code == 200 and response.headers.get("x-ratelimit-limit-requests") == "1000"


def test_redis_outage_fails_open_or_closed_and_recovers(
    own_redis, openai_upstream, gateway_factory, configure, make_key
):
    configure(
        openai_provider_yaml(
            name=PROVIDER, base_url=openai_upstream.base_url, model=MODEL, api_key_env=UPSTREAM_KEY_ENV
        )
        + TIER
    )
    key = make_key("acme")
    env = {"REDIS_URL": own_redis.url, UPSTREAM_KEY_ENV: "sk-upstream-outage"}
    with ThreadPoolExecutor(2) as pool:
        fail_open, fail_closed = pool.map(
            lambda mode: gateway_factory(**env, GATEWAY_ON_REDIS_ERROR=mode), ["open", "closed"]
        )
    assert enforced(chat(fail_open, key.raw))
    assert enforced(chat(fail_closed, key.raw))

    own_redis.stop()

    unchecked = [chat(fail_open, key.raw) for _ in range(3)]
    refused = chat(fail_closed, key.raw)
    assert [r.status_code for r in unchecked] == [200, 200, 200]
    assert all("x-ratelimit-limit-requests" not in r.headers for r in unchecked)
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["error"] == {
        "message": "The gateway cannot check rate limits right now; please retry shortly.",
        "type": "server_error",
        "param": None,
        "code": "rate_limiter_unavailable",
    }
    assert len(openai_upstream.requests) == 5  # the refused request never went upstream
    wait_for(lambda: "admitted unchecked" in fail_open.log(), timeout=5)
    assert fail_open.log().count("admitted unchecked") == 1  # logged once a minute, not per request
    health = httpx.get(f"{fail_open.base_url}/health", timeout=5).json()
    assert health["limits"] == {"store": "redis", "admitted_unchecked": 3}

    own_redis.start()
    started = time.monotonic()

    wait_for(lambda: enforced(chat(fail_open, key.raw)), timeout=5, interval=0.1)
    wait_for(lambda: enforced(chat(fail_closed, key.raw)), timeout=5, interval=0.1)
    assert time.monotonic() - started < 5
