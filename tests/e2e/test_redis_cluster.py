"""Two gateways on a Redis Cluster of the test's own (three primaries, each with a replica, on
free loopback ports): limits hold exactly for tenants whose counters live on different
primaries, every admitted request is recorded once through the outbox stream (another slot),
and when the primary holding a tenant's counters is killed, its replica takes over and admission
recovers within the cluster's node timeout plus the gateway's retry, with no usage event lost.

Debian's redis-server is required (``.ci/run`` installs it): not found is a failure."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from accounting.models import UsageRecord
from accounting.outbox import outbox_stream
from bench.redis_topology import OwnedRedisCluster
from tests.conftest import wait_for
from tests.e2e.redis_failover import Traffic, avoid_minute_edge, fire, known_everywhere, tiered_config

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

NODE_TIMEOUT_MS = 1000
# Admission is back once the replica was promoted (the node timeout, then an election of about
# a second) and the gateway's client has read the new slot map (its next call after the store's
# one-second pause): generous here for a loaded CI machine.
RECOVERY_SECONDS = 15.0


@pytest.fixture
def cluster() -> Iterator[OwnedRedisCluster]:
    try:
        owned = OwnedRedisCluster(replicas=True, node_timeout_ms=NODE_TIMEOUT_MS).start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield owned
    owned.stop_all()


@pytest.fixture
def gateways(cluster, gateway_factory):
    env = {"REDIS_URL": cluster.url, "GATEWAY_ON_REDIS_ERROR": "closed", "GATEWAY_MOCK_CHUNK_DELAY_MS": "0"}
    return [gateway_factory(**env), gateway_factory(**env)]


def tenant_primary(cluster: OwnedRedisCluster, tenant_id: int, prefix: str) -> int:
    """The port of the primary holding the tenant's counters (its hash tag's slot)."""
    return cluster.primary_of(f"{prefix}{{t{tenant_id}}}").port


def test_limits_exact_per_tenant_across_primaries_and_every_admission_recorded_once(
    cluster, gateways, configure, make_key, redis_prefix
):
    names = [f"tenant{i}" for i in range(8)]
    configure(tiered_config(names, requests_per_minute=10))
    keys = [make_key(name) for name in names]
    # two tenants whose counters live on different primaries (8 tenants span them)
    by_primary = {tenant_primary(cluster, k.tenant.pk, redis_prefix): k for k in keys}
    assert len(by_primary) >= 2
    chosen = list(by_primary.values())[:2]
    for key in chosen:
        known_everywhere(gateways, key)
    avoid_minute_edge()

    results = [fire(gateways, key, 24) for key in chosen]

    for responses in results:
        assert sorted(r.status_code for r in responses) == [200] * 10 + [429] * 14
    admitted = {r.headers["x-request-id"] for responses in results for r in responses if r.status_code == 200}
    wait_for(lambda: UsageRecord.objects.count() == 20, timeout=20)
    assert set(UsageRecord.objects.values_list("request_id", flat=True)) == admitted
    # the stream lives in a slot of its own, drained empty
    stream = outbox_stream(redis_prefix)
    with cluster.primary_of(stream).client() as client:
        wait_for(lambda: client.xlen(stream) == 0)


def test_primary_killed_mid_traffic_recovers_within_the_node_timeout_and_loses_no_usage(
    cluster, gateways, configure, make_key, redis_prefix
):
    configure(tiered_config(["failover"], requests_per_minute=100_000))
    key = make_key("failover")
    known_everywhere(gateways, key)
    tag = f"{redis_prefix}{{t{key.tenant.pk}}}"
    counters = cluster.primary_of(tag)
    with Traffic(gateways, key) as traffic:
        wait_for(lambda: traffic.ok_since(0, 10), timeout=20)
        killed_at = time.monotonic()
        counters.kill()
        wait_for(lambda: traffic.ok_since(killed_at, 10), timeout=RECOVERY_SECONDS + 10)
    back = traffic.first_ok_streak_after(killed_at)
    assert back is not None and back - killed_at < RECOVERY_SECONDS
    assert cluster.primary_of(tag) in cluster.replicas  # promoted
    # refused while no primary held the slot (fail closed), never admitted unchecked
    assert {status for _, status, _ in traffic.answers} <= {200, 503}
    admitted = traffic.admitted_ids()
    deadline = time.monotonic() + 30
    while UsageRecord.objects.count() != len(admitted) and time.monotonic() < deadline:
        time.sleep(0.1)
    recorded = dict(UsageRecord.objects.values_list("request_id", "status"))
    # on a failure, which requests differ (and each extra one's status)
    assert set(recorded) == admitted, {
        "missing": sorted(admitted - set(recorded)),
        "extra": {rid: recorded[rid] for rid in set(recorded) - admitted},
    }
