"""Two gateways on a Redis primary watched by Sentinel (a primary, its replica and a sentinel of
the test's own, on free loopback ports; ``REDIS_URL=redis+sentinel://…/gateway/0``): limits hold
exactly, and when the primary is killed the sentinel promotes the replica and admission recovers
within the sentinel's down-after time plus the failover, with no usage event lost.

Debian's redis-server is required (``.ci/run`` installs it): not found is a failure."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from accounting.models import UsageRecord
from bench.redis_topology import OwnedSentinel
from tests.conftest import wait_for
from tests.e2e.redis_failover import Traffic, avoid_minute_edge, fire, known_everywhere, tiered_config

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DOWN_AFTER_MS = 1000
# The sentinel marks the primary down after DOWN_AFTER_MS, promotes the replica (about a second),
# and the gateway's next call after the store's one-second pause asks it for the new primary.
RECOVERY_SECONDS = 15.0


@pytest.fixture
def sentinel() -> Iterator[OwnedSentinel]:
    try:
        owned = OwnedSentinel(down_after_ms=DOWN_AFTER_MS).start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield owned
    owned.stop_all()


@pytest.fixture
def gateways(sentinel, gateway_factory):
    env = {"REDIS_URL": sentinel.url, "GATEWAY_ON_REDIS_ERROR": "closed", "GATEWAY_MOCK_CHUNK_DELAY_MS": "0"}
    return [gateway_factory(**env), gateway_factory(**env)]


def test_limits_exact_through_sentinel(sentinel, gateways, configure, make_key):
    configure(tiered_config(["watched"], requests_per_minute=10))
    key = make_key("watched")
    known_everywhere(gateways, key)
    avoid_minute_edge()

    responses = fire(gateways, key, 24)

    assert sorted(r.status_code for r in responses) == [200] * 10 + [429] * 14
    admitted = {r.headers["x-request-id"] for r in responses if r.status_code == 200}
    wait_for(lambda: UsageRecord.objects.count() == 10, timeout=20)
    assert set(UsageRecord.objects.values_list("request_id", flat=True)) == admitted


def test_primary_killed_mid_traffic_fails_over_and_loses_no_usage(sentinel, gateways, configure, make_key):
    configure(tiered_config(["failover"], requests_per_minute=100_000))
    key = make_key("failover")
    known_everywhere(gateways, key)
    with Traffic(gateways, key) as traffic:
        wait_for(lambda: traffic.ok_since(0, 10), timeout=20)
        killed_at = time.monotonic()
        sentinel.primary.kill()
        wait_for(lambda: traffic.ok_since(killed_at, 10), timeout=RECOVERY_SECONDS + 10)
    back = traffic.first_ok_streak_after(killed_at)
    assert back is not None and back - killed_at < RECOVERY_SECONDS
    assert sentinel.current_primary_port() == sentinel.replica.port
    assert {status for _, status, _ in traffic.answers} <= {200, 503}
    admitted = traffic.admitted_ids()
    wait_for(lambda: UsageRecord.objects.count() == len(admitted), timeout=30)
    assert set(UsageRecord.objects.values_list("request_id", flat=True)) == admitted
