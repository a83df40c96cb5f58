"""A PostgreSQL cluster of a test's own (``initdb`` in a temporary directory, a free loopback
port), to be stopped and started mid-test: the shared server on 5432 is never touched. It is the
bench's owned cluster (``bench.postgres_cluster``: the machine's server binaries, run as the
``postgres`` user under root) with fsync off; server binaries not found is a failure, never a
skip."""

from __future__ import annotations

import pytest

from bench.postgres_cluster import OwnedPostgres


class PostgresCluster(OwnedPostgres):
    def __init__(self) -> None:
        try:
            super().__init__(fsync=False)
        except RuntimeError as exc:
            pytest.fail(str(exc))
