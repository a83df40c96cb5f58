"""A gateway behind PgBouncer in transaction mode (Debian's pgbouncer, started by the test on a
free loopback port, two server connections for every client): with
``GATEWAY_DATABASE_TRANSACTION_POOLING=true`` every request is recorded, the rollup and the
report read through the pooler too, and no prepared statement is missing on a server connection
it was never prepared on. ``.ci/run`` installs pgbouncer: not found is a failure."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from django.db import connection

from accounting.models import UsageRecord
from tests.conftest import mock_echo_yaml, wait_for
from tests.e2e.pgbouncer import PgBouncer

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

REQUESTS = 30


@pytest.fixture
def pgbouncer() -> Iterator[str]:
    bouncer = PgBouncer()
    yield bouncer.url
    bouncer.stop()


def test_gateway_records_every_request_behind_pgbouncer_in_transaction_mode(
    pgbouncer, gateway_factory, configure, make_key
):
    configure(mock_echo_yaml())
    key = make_key("pooled")
    gateway = gateway_factory(
        DATABASE_URL=pgbouncer,
        GATEWAY_DATABASE_TRANSACTION_POOLING="true",
        GATEWAY_MOCK_CHUNK_DELAY_MS="0",
        REDIS_URL="",
    )
    ids = []
    with httpx.Client(timeout=30) as client:
        for i in range(REQUESTS):
            response = client.post(
                f"{gateway.base_url}/v1/chat/completions",
                headers={"Authorization": f"Bearer {key.raw}"},
                json={"model": "mock-echo", "messages": [{"role": "user", "content": f"n{i}"}]},
            )
            assert response.status_code == 200, response.text
            ids.append(response.headers["x-request-id"])
    wait_for(lambda: UsageRecord.objects.count() == REQUESTS, timeout=30)
    assert sorted(UsageRecord.objects.values_list("request_id", flat=True)) == sorted(ids)
    # the periodic tasks through the pooler too: rollups and partitions, many times over
    for _ in range(6):
        gateway.manage("shell", "-c", "from accounting.tasks import rollup_usage, prepare_usage_partitions;"
                       " rollup_usage(); prepare_usage_partitions()")  # fmt: skip
    assert "does not exist" not in gateway.log()
    with connection.cursor() as cursor:
        cursor.execute("SELECT sum(requests) FROM accounting_usagerollup WHERE granularity = 'hour'")
        assert cursor.fetchone() == (REQUESTS,)
