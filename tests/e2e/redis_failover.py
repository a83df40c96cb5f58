"""What the Redis Cluster and Sentinel tests share: requests fired at several gateways at once,
a tier that refuses past ten requests a minute, and a stream of requests kept up while a Redis
primary is killed, with what each got and when."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

from tests.conftest import GatewayProcess, IssuedKey, mock_echo_yaml, wait_for

BODY = {"model": "mock-echo", "messages": [{"role": "user", "content": "hi"}]}
TIER = """
tiers:
  - name: limited
    algorithm: fixed_window
    requests_per_minute: {rpm}
tenants:
"""


def tiered_config(tenants: list[str], *, requests_per_minute: int) -> str:
    """The mock model, and a tier of ``requests_per_minute`` for each named tenant."""
    tenant_lines = "".join(f"  - name: {t}\n    tier: limited\n" for t in tenants)
    return mock_echo_yaml() + TIER.format(rpm=requests_per_minute) + tenant_lines


def known_everywhere(gateways: list[GatewayProcess], key: IssuedKey) -> None:
    for gateway in gateways:
        wait_for(
            lambda gateway=gateway: (
                httpx.get(
                    f"{gateway.base_url}/v1/models", headers={"Authorization": f"Bearer {key.raw}"}
                ).status_code
                == 200
            ),
            timeout=10,
        )


def fire(gateways: list[GatewayProcess], key: IssuedKey, count: int) -> list[httpx.Response]:
    """``count`` requests released together, spread over ``gateways``."""
    barrier = threading.Barrier(count)
    with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=count)) as client:

        def one(i: int) -> httpx.Response:
            barrier.wait()
            return client.post(
                f"{gateways[i % len(gateways)].base_url}/v1/chat/completions",
                headers={"Authorization": f"Bearer {key.raw}"},
                json=BODY,
            )

        with ThreadPoolExecutor(count) as pool:
            return list(pool.map(one, range(count)))


def avoid_minute_edge(margin: float = 15.0) -> None:
    """Per-minute windows: start well inside one minute."""
    into = time.time() % 60
    if into > 60 - margin:
        time.sleep(60 - into + 0.5)


@dataclass
class Traffic:
    """One request every ``interval`` seconds, alternating over the gateways, until stopped
    (bounded by ``limit`` requests): each answer's status, request id and time."""

    gateways: list[GatewayProcess]
    key: IssuedKey
    interval: float = 0.05
    limit: int = 2000
    answers: list[tuple[float, int, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Traffic:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            for i in range(self.limit):
                if self._stop.is_set():
                    return
                gateway = self.gateways[i % len(self.gateways)]
                response = client.post(
                    f"{gateway.base_url}/v1/chat/completions",
                    headers={"Authorization": f"Bearer {self.key.raw}"},
                    json=BODY,
                )
                self.answers.append(
                    (time.monotonic(), response.status_code, response.headers["x-request-id"])
                )
                self._stop.wait(self.interval)

    def ok_since(self, moment: float, count: int) -> bool:
        """``count`` answers in a row were 200, all after ``moment``."""
        recent = [status for at, status, _ in self.answers if at > moment][-count:]
        return len(recent) == count and set(recent) == {200}

    def first_ok_streak_after(self, moment: float, count: int = 5) -> float | None:
        """When the first run of ``count`` successes after ``moment`` began."""
        run: list[float] = []
        for at, status, _ in self.answers:
            if at <= moment:
                continue
            run = [*run, at] if status == 200 else []
            if len(run) == count:
                return run[0]
        return None

    def admitted_ids(self) -> set[str]:
        return {rid for _, status, rid in self.answers if status == 200}
