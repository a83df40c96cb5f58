"""A PgBouncer of a test's own (Debian's pgbouncer, on a free loopback port, in front of the
test database, run as the ``postgres`` user under root), with trust or with a password checked
by PgBouncer itself (``md5``: the server behind it trusts). ``.ci/run`` installs pgbouncer: not
found is a failure."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from tests.conftest import database_url_for_subprocess
from tests.deploy.test_roles import free_port


class PgBouncer:
    def __init__(self, *, password: str = "", pool_mode: str = "transaction") -> None:
        binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not os.path.exists(binary):
            pytest.fail("pgbouncer not found: apt-get install -y pgbouncer")
        # a directory the postgres user (pgbouncer's, under root) can reach: pytest's tmp_path is not
        self.dir = Path(tempfile.mkdtemp(prefix="gw-pgbouncer-"))
        upstream = urlsplit(database_url_for_subprocess())
        self.database = upstream.path.lstrip("/")
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/{self.database}"
        self.set_password(password, reload=False)
        config = self.dir / "pgbouncer.ini"
        config.write_text(
            f"[databases]\n{self.database} = host={upstream.hostname} port={upstream.port or 5432}\n"
            f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = {'md5' if password else 'trust'}\nauth_file = {self.dir / 'users.txt'}\n"
            f"pool_mode = {pool_mode}\nadmin_users = postgres\n"
            "default_pool_size = 2\nmax_client_conn = 200\nignore_startup_parameters = extra_float_digits\n"
            f"logfile = {self.dir / 'pgbouncer.log'}\n"
        )
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
            for path in self.dir.iterdir():
                shutil.chown(path, "postgres")
        argv = [binary, str(config)]
        self.process = subprocess.Popen(
            ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv, start_new_session=True
        )
        deadline = time.monotonic() + 20
        while subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port)]).returncode != 0:
            assert time.monotonic() < deadline, "pgbouncer did not start"
            time.sleep(0.1)

    def set_password(self, password: str, *, reload: bool = True) -> None:
        """The password PgBouncer asks its clients for (and logs in to the server with)."""
        self.password = password
        users = self.dir / "users.txt"
        users.write_text(f'"postgres" "{password}"\n')
        if os.geteuid() == 0:
            shutil.chown(users, "postgres")
        if reload:
            os.killpg(self.process.pid, signal.SIGHUP)  # reads users.txt again

    def connect(self, password: str, *, database: str = "") -> psycopg.Connection:
        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user="postgres",
            password=password,
            dbname=database or self.database,
            connect_timeout=5,
            autocommit=True,
            prepare_threshold=None,
        )

    def drop_clients(self) -> None:
        """Every client connection dropped (the admin console's KILL, then RESUME): the
        clients must open new ones."""
        with self.connect(self.password, database="pgbouncer") as admin:
            admin.execute(f"KILL {self.database}")
            admin.execute(f"RESUME {self.database}")

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)
