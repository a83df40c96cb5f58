"""A configuration snapshot is one moment of the database: a change that commits while a gateway
loads its snapshot is either wholly in it or wholly out of it (then the next reload brings it).
Read table by table, the load once took the keys from before an ``applyconfig`` and the models
from after it: the new model was served and its tenant's new hard quota skipped."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connections

from gateway_site.runtime import snapshot as snapshot_module
from gateway_site.runtime.snapshot import load_snapshot
from quotas.revision import current_revision

pytestmark = [pytest.mark.django_db(transaction=True)]

BEFORE = """
providers:
  - {name: mock, kind: mock}
models:
  - name: early
    deployments: [{provider: mock, model: mock-echo, free: true}]
"""
# One applyconfig: a model and, for the tenant, a hard monthly quota.
AFTER = (
    BEFORE
    + """  - name: late
    deployments: [{provider: mock, model: mock-echo-late, free: true}]
tenants:
  - name: acme
    quotas:
      - {period: month, limit_usd: "0.0002", hard: true}
"""
)


def test_a_change_committed_during_the_load_is_wholly_out_of_the_snapshot_then_wholly_in_the_next(
    configure, make_key, monkeypatch
):
    configure(BEFORE)
    key = make_key("acme")
    revision = current_revision()
    read_catalog = snapshot_module.load_catalog
    committed: list[int] = []

    def another_process_commits_then_read_catalog():
        # The keys were read; now the change commits on another connection, before the models are read.
        def apply() -> None:
            try:
                configure(AFTER)
                committed.append(current_revision())
            finally:
                connections.close_all()

        worker = threading.Thread(target=apply)
        worker.start()
        worker.join(timeout=30)
        return read_catalog()

    monkeypatch.setattr(snapshot_module, "load_catalog", another_process_commits_then_read_catalog)
    loaded = load_snapshot()
    monkeypatch.undo()

    assert committed == [revision + 1]
    assert loaded.revision == revision
    assert sorted(loaded.catalog.models) == ["early"]
    assert loaded.keys.authenticate(key.raw).limits.quotas == ()

    reloaded = load_snapshot()
    assert reloaded.revision == revision + 1
    assert sorted(reloaded.catalog.models) == ["early", "late"]
    [quota] = reloaded.keys.authenticate(key.raw).limits.quotas
    assert (quota.period, quota.limit_usd, quota.hard) == ("month", Decimal("0.0002"), True)
