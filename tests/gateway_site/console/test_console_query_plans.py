"""The request log's and the dashboard's queries on a PostgreSQL table of realistic size: 200,000
usage records (generate_series, about 28 days, 20 tenants, 30 models, 6 providers, 12
deployments, 4 endpoints, 2% errors, 10% cache hits) and their rollups. Each query's plan
(EXPLAIN ANALYZE) reads the records through an index, never a sequential scan; the times
measured are printed (``-s``), not asserted."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.db import connection

from accounting.models import UsageRecord
from accounting.recorder import write_events
from accounting.rollups import usage_rollup
from gateway_site.console.request_log import filtered, page_of
from gateway_site.console.spend_dashboard import aggregates
from gateway_site.console.window import window_from
from quotas.models import ApiKey
from tests.accounting.events import usage_event

pytestmark = pytest.mark.django_db(transaction=True)
ROWS = 200_000
TABLE = UsageRecord._meta.db_table

SEED = f"""
INSERT INTO {TABLE} (request_id, client_request_id, created_at, ingested_at, tenant_id, tenant_name,
  key_id, key_prefix, endpoint, model, deployment_id, provider, upstream_model, prompt_tokens,
  completion_tokens, cached_tokens, reasoning_tokens, usage_estimated, cache_write_tokens, cost_usd,
  price_version_id, cache_hit, cost_saved_usd, status, error_type, streamed, client_disconnected,
  latency_ms, upstream_latency_ms, ttft_ms, attempts, fell_back)
SELECT 'req_' || g, 'client_' || g, now() - g * interval '12 seconds', now() - interval '1 hour',
  (%(tenants)s::bigint[])[1 + g %% 20], 'tenant' || g %% 20, (%(keys)s::bigint[])[1 + g %% 20],
  'gw-' || g %% 20, (ARRAY['chat.completions','embeddings','responses','messages'])[1 + g %% 4],
  'model-' || g %% 30, g %% 12, 'provider-' || g %% 6, 'up', 100, 10, 0, 0, false, 0, 0.0012, NULL,
  g %% 10 = 0, 0, CASE WHEN g %% 50 = 0 THEN 502 ELSE 200 END, '', false, false, (g %% 2000)::float,
  0, NULL, 1, false
FROM generate_series(1, {ROWS}) AS g
"""


@pytest.fixture
def seeded(make_key):
    if connection.vendor != "postgresql":
        pytest.fail("query plans are PostgreSQL's; this test needs DATABASE_URL on PostgreSQL")
    keys = [make_key(f"tenant{n}", name=f"k{n}") for n in range(20)]
    with connection.cursor() as cursor:
        cursor.execute(SEED, {"tenants": [k.tenant.pk for k in keys], "keys": [k.key_id for k in keys]})
        cursor.execute(f"ANALYZE {TABLE}")
    started = time.perf_counter()
    usage_rollup(lag=dt.timedelta(0))
    print(f"\nrollup of {ROWS} records: {time.perf_counter() - started:.1f} s")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE accounting_usagerollup")
    return keys


def scanned_in_full(text: str) -> list[str]:
    """The partitions holding records that ``text`` (a plan) reads by a sequential scan. (The
    planner scans the empty month tables prepared ahead that way: they cost nothing.)"""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT tableoid::regclass::text FROM {TABLE}")
        holding = {row[0] for row in cursor.fetchall()}
    return [line.strip() for line in text.splitlines() if any(f"Seq Scan on {t} " in line for t in holding)]


def plan(queryset) -> tuple[str, float]:
    """The plan of ``queryset`` as PostgreSQL ran it, and the execution time it measured (ms)."""
    text = queryset.explain(analyze=True)
    ms = float(text.rsplit("Execution Time: ", 1)[1].split(" ms")[0])
    return text, ms


def test_the_request_log_filters_read_indexes(seeded):
    prefix = ApiKey.objects.get(pk=seeded[3].key_id).prefix
    today = dt.datetime.now(dt.UTC).date()
    cases = {
        "newest": {},
        "tenant": {"tenant": "tenant7"},
        "key": {"key": prefix},
        "model": {"model": "model-12"},
        "provider": {"provider": "provider-2"},
        "deployment": {"deployment": "5"},
        "status 502": {"status": "502"},
        "errors": {"status": "errors"},
        "endpoint": {"endpoint": "embeddings"},
        "cache hit": {"cache_hit": "yes"},
        "date range": {"start": (today - dt.timedelta(days=10)).isoformat(), "end": today.isoformat()},
        "slow": {"latency_min": "1990"},
        "latency range, tenant": {"tenant": "tenant3", "latency_min": "500", "latency_max": "600"},
        "request id": {"q": "req_123456"},
        "client request id": {"q": "client_4242"},
        "tenant, errors, week": {
            "tenant": "tenant0",
            "status": "errors",
            "start": (today - dt.timedelta(days=7)).isoformat(),
        },
    }
    times = {}
    for name, params in cases.items():
        records = filtered(params).records.order_by("-created_at", "-id")
        text, ms = plan(records[:51])
        assert scanned_in_full(text) == [], f"{name}:\n{text}"
        times[name] = ms
        _, cursor = page_of(filtered(params).records)
        if cursor:  # the next page too
            older = filtered(params).records.order_by("-created_at", "-id")
            at, _, last = cursor.rpartition("_")
            moment = dt.datetime.fromisoformat(at)
            text, _ = plan(
                older.filter(created_at__lte=moment).exclude(created_at=moment, id__gte=int(last))[:51]
            )
            assert scanned_in_full(text) == [], f"{name}, next page:\n{text}"
    print("request log page (ms):", {k: round(v, 1) for k, v in times.items()})
    assert len(page_of(filtered({"q": "req_123456"}).records)[0]) == 1


def test_the_dashboard_reads_rollups_not_records(seeded):
    window = window_from({"start": (dt.datetime.now(dt.UTC) - dt.timedelta(days=29)).date().isoformat()})
    now = dt.datetime.now(dt.UTC)
    # two records ingested after the rollup run: the dashboard adds them to the rollups
    write_events([usage_event(seeded[0], n, at=now, model="model-1", cost="1") for n in (1, 2)])
    started = time.perf_counter()
    with connection.execute_wrapper(_explain_record_queries) as _:
        data = aggregates(window, "tenant")
    elapsed = (time.perf_counter() - started) * 1000
    assert data["totals"]["requests"] == ROWS + 2
    assert len(data["groups"]) == 20
    assert _SEEN, "no query of the records was explained"
    for sql, text in _SEEN:
        assert scanned_in_full(text) == [], f"{sql}\n{text}"
    print(f"dashboard aggregates, 30 days by day, {ROWS} records: {elapsed:.0f} ms")


_SEEN: list[tuple[str, str]] = []


def _explain_record_queries(execute, sql, params, many, context):
    """Runs each query; those that read the records are explained first (their plans kept)."""
    if f'"{TABLE}"' in sql and sql.lstrip().upper().startswith("SELECT"):
        cursor = context["cursor"]
        cursor.execute("EXPLAIN " + sql, params)
        _SEEN.append((sql, "\n".join(row[0] for row in cursor.fetchall())))
    return execute(sql, params, many, context)
