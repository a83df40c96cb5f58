"""The read-replica router: inside a GET or HEAD request of the standard stack (or
``reads_from_replica``) the usage tables are read from the ``replica`` alias, and nothing else
is; writes, and reads outside such a request (the rollup task), use the primary."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from accounting.models import RollupState, UsageRecord, UsageRollup
from gateway_site.database_routing import ReplicaRouter, reads_from_replica, replica_reads
from quotas.models import Tenant

router = ReplicaRouter()


def test_usage_reads_go_to_the_replica_only_within_a_reading_context():
    usage = [UsageRecord, UsageRollup, RollupState]
    assert [router.db_for_read(m) for m in usage] == [None, None, None]
    with reads_from_replica():
        assert [router.db_for_read(m) for m in usage] == ["replica"] * 3
        assert router.db_for_read(Tenant) is None  # configuration: always the primary
        assert router.db_for_read(User) is None
        assert router.db_for_write(UsageRecord) is None
    assert router.db_for_read(UsageRecord) is None
    assert router.allow_migrate("replica", "accounting") is False
    assert router.allow_migrate("default", "accounting") is None


def test_the_middleware_routes_get_and_head_but_not_writes():
    seen: list[str | None] = []

    def view(request: HttpRequest) -> HttpResponse:
        seen.append(router.db_for_read(UsageRecord))
        return HttpResponse("ok")

    handler = replica_reads(view)
    factory = RequestFactory()
    for request in (factory.get("/admin/"), factory.head("/api/usage"), factory.post("/admin/x")):
        handler(request)
    assert seen == ["replica", "replica", None]
    assert router.db_for_read(UsageRecord) is None  # nothing leaks past the request
