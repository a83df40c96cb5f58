"""Reads for reports and the console from a read replica (``DATABASE_REPLICA_URL``): within a
GET or HEAD request of the admin, the console or the reports API (``replica_reads``, a
middleware of the standard handler's stack), the usage tables are read from the ``replica``
alias; everything else, every write and every read outside such a request (the rollup and
retention tasks, the ledger, the configuration snapshot) uses the primary. A replica lags the
primary by its replication delay: a report may miss the last moments' usage, never more."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import Any

from django.db.models import Model
from django.http import HttpRequest, HttpResponse

REPLICA = "replica"
# Append-only usage data: reading it a moment late changes no decision.
REPLICA_MODELS = frozenset({"accounting.usagerecord", "accounting.usagerollup", "accounting.rollupstate"})
_reads_from_replica: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "reads_from_replica", default=False
)


class ReplicaRouter:
    def db_for_read(self, model: type[Model], **hints: Any) -> str | None:
        if _reads_from_replica.get() and model._meta.label_lower in REPLICA_MODELS:
            return REPLICA
        return None

    def db_for_write(self, model: type[Model], **hints: Any) -> str | None:
        return None

    def allow_relation(self, first: Model, second: Model, **hints: Any) -> bool | None:
        return True  # one database, two connections to it

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool | None:
        return False if db == REPLICA else None


@contextlib.contextmanager
def reads_from_replica() -> Iterator[None]:
    """Within it, the usage tables are read from the replica (when one is configured)."""
    token = _reads_from_replica.set(True)
    try:
        yield
    finally:
        _reads_from_replica.reset(token)


def replica_reads(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """Middleware: a GET or HEAD request reads the usage tables from the replica."""

    def middleware(request: HttpRequest) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            return get_response(request)
        with reads_from_replica():
            return get_response(request)

    return middleware
