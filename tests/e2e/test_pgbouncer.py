"""A gateway behind PgBouncer in transaction mode (Debian's pgbouncer, started by the test on a
free loopback port, two server connections for every client): with
``GATEWAY_DATABASE_TRANSACTION_POOLING=true`` every request is recorded, the rollup and the
report read through the pooler too, and no prepared statement is missing on a server connection
it was never prepared on. ``.ci/run`` installs pgbouncer: not found is a failure."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from django.db import connection

from accounting.models import UsageRecord
from tests.conftest import database_url_for_subprocess, mock_echo_yaml, wait_for
from tests.deploy.test_roles import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

REQUESTS = 30


@pytest.fixture
def pgbouncer() -> Iterator[str]:
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not os.path.exists(binary):
        pytest.fail("pgbouncer not found: apt-get install -y pgbouncer")
    # a directory the postgres user (pgbouncer's, under root) can reach: pytest's tmp_path is not
    tmp_path = Path(tempfile.mkdtemp(prefix="gw-pgbouncer-"))
    upstream = urlsplit(database_url_for_subprocess())
    port = free_port()
    (tmp_path / "users.txt").write_text('"postgres" ""\n')
    config = tmp_path / "pgbouncer.ini"
    config.write_text(
        f"[databases]\n{upstream.path.lstrip('/')} = host={upstream.hostname} port={upstream.port or 5432}\n"
        f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {tmp_path / 'users.txt'}\npool_mode = transaction\n"
        "default_pool_size = 2\nmax_client_conn = 200\nignore_startup_parameters = extra_float_digits\n"
        f"logfile = {tmp_path / 'pgbouncer.log'}\n"
    )
    if os.geteuid() == 0:
        shutil.chown(tmp_path, "postgres")
        for path in tmp_path.iterdir():
            shutil.chown(path, "postgres")
    argv = [binary, str(config)]
    process = subprocess.Popen(
        ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv, start_new_session=True
    )
    url = f"postgres://postgres@127.0.0.1:{port}{upstream.path}"
    deadline = time.monotonic() + 20
    while subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(port)]).returncode != 0:
        assert time.monotonic() < deadline, "pgbouncer did not start"
        time.sleep(0.1)
    yield url
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(10)
    shutil.rmtree(tmp_path, ignore_errors=True)


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
