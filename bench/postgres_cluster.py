"""A PostgreSQL cluster owned by one bench run: ``initdb`` in a directory of its own, a free
loopback port, stopped and started again on purpose (the chaos profile's outage). The shared
server on 5432 is never touched.

The server binaries are the machine's (``/usr/lib/postgresql/<version>/bin``, the highest
version, else ``pg_config --bindir``). PostgreSQL refuses to run as root, so under root every
server command runs as the ``postgres`` user (``runuser``) in a directory that user owns."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg

from bench.upstreams import free_port

COMMAND_TIMEOUT_S = 60
INSTALL_HINT = "PostgreSQL server binaries not found: apt-get install -y postgresql"


def server_bin_dir() -> Path:
    found = [path.parent for path in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    found.sort(key=lambda bin_dir: int(bin_dir.parent.name) if bin_dir.parent.name.isdigit() else -1)
    if found:
        return found[-1]
    pg_config = shutil.which("pg_config")
    if pg_config:
        done = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
        bin_dir = Path(done.stdout.strip())
        if (bin_dir / "initdb").exists():
            return bin_dir
    raise RuntimeError(INSTALL_HINT)


class OwnedPostgres:
    """``init(database)`` creates the cluster and the database and starts the server;
    ``stop``/``start`` make an outage; ``destroy`` stops it and deletes everything."""

    def __init__(self, *, parent: Path | None = None, fsync: bool = True) -> None:
        """``parent``: where its directory goes (the ``postgres`` user must be able to reach
        it); ``fsync=False`` for data that need not survive a crash of the machine (tests)."""
        self.bin = server_bin_dir()
        self.port = free_port()
        self.fsync = fsync
        self.base = Path(tempfile.mkdtemp(prefix="gw-pg-", dir=parent))
        self.data = self.base / "data"
        self.log_path = self.base / "server.log"
        self._as_postgres: list[str] = []
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError(
                    "running as root and there is no `postgres` user to run initdb as"
                ) from None
            os.chown(self.base, owner.pw_uid, owner.pw_gid)
            self._as_postgres = ["runuser", "-u", "postgres", "--"]

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _pg(self, tool: str, *args: str) -> None:
        done = subprocess.run(
            [*self._as_postgres, str(self.bin / tool), *args],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
        )
        if done.returncode != 0:
            log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
            raise RuntimeError(f"{tool} {' '.join(args)} failed:\n{done.stdout}{done.stderr}\n{log[-2000:]}")

    def init(self, database: str) -> OwnedPostgres:
        self._pg("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        self.start()
        with psycopg.connect(self.url("postgres"), autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        return self

    def start(self) -> None:
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c max_connections=200"
        if not self.fsync:
            options += " -c fsync=off"
        self._pg("pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-w", "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        """``fast`` disconnects every client at once (what a failover or a restart does)."""
        self._pg("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def destroy(self, *, keep: bool = False) -> None:
        """Stop the server if it runs; delete the cluster unless ``keep``."""
        try:
            if self.running():
                self.stop("immediate")
        finally:
            if not keep:
                shutil.rmtree(self.base, ignore_errors=True)
