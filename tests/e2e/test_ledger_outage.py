"""The usage ledger across a Redis outage (a redis-server of the test's own): events go through
the outbox while Redis is up, straight to Postgres while it is down, and through the outbox
again once it is back; each request is recorded exactly once."""

from __future__ import annotations

import pytest
import redis

from accounting.models import UsageRecord
from accounting.outbox import outbox_stream, pending_count
from tests.conftest import openai_provider_yaml, wait_for
from tests.e2e.conftest import MODEL, PROVIDER, UPSTREAM_KEY_ENV
from tests.e2e.test_limits_redis_outage import TIER, RedisServer, chat

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def own_redis():
    server = RedisServer().start()
    yield server
    server.stop()


def test_no_usage_event_is_lost_while_redis_is_down(
    own_redis, openai_upstream, gateway_factory, configure, make_key, redis_prefix
):
    configure(
        openai_provider_yaml(
            name=PROVIDER, base_url=openai_upstream.base_url, model=MODEL, api_key_env=UPSTREAM_KEY_ENV
        )
        + TIER
    )
    key = make_key("acme")
    gateway = gateway_factory(REDIS_URL=own_redis.url, **{UPSTREAM_KEY_ENV: "sk-upstream-outage"})
    client = redis.Redis.from_url(own_redis.url, socket_timeout=2)

    assert [chat(gateway, key.raw).status_code for _ in range(2)] == [200, 200]
    wait_for(lambda: UsageRecord.objects.count() == 2)
    assert pending_count(client, outbox_stream(redis_prefix)) == 0

    own_redis.stop()
    assert [chat(gateway, key.raw).status_code for _ in range(3)] == [200, 200, 200]
    wait_for(lambda: UsageRecord.objects.count() == 5)  # written to Postgres directly

    own_redis.start()  # empty: no persistence
    wait_for(lambda: chat(gateway, key.raw).headers.get("x-ratelimit-limit-requests") == "1000", timeout=10)
    sent = 5 + len(openai_upstream.requests) - 5
    wait_for(lambda: UsageRecord.objects.count() == sent)
    assert (
        UsageRecord.objects.values("request_id").distinct().count() == sent == len(openai_upstream.requests)
    )
    wait_for(lambda: client.xlen(outbox_stream(redis_prefix)) == 0)
    client.close()
