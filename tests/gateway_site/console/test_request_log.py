"""The request log, in process: each filter selects exactly its records, pages are keyset pages
that cover every record once (ties on the time included), a request's page shows its attempts,
tokens, cost and latency, and its decrypted content only where the tenant logs content; content
is stored encrypted and purged after its retention; staff only."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import pytest
from django.contrib.auth.models import User
from django.db import connection

from accounting.models import RequestContent, UsageRecord
from accounting.recorder import write_events
from accounting.tasks import purge_request_content
from gateway_site.console.request_log import filtered, page_of
from gateway_site.runtime.content_store import ContentStore
from quotas.models import ApiKey
from tests.accounting.events import usage_event
from tests.conftest import platform_staff

pytestmark = pytest.mark.django_db(transaction=True)
AT = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def records(make_key):
    a, b = make_key("acme", name="a"), make_key("globex", name="b")
    acme = a.tenant
    acme.log_content = True
    acme.save()

    def event(key, n, **changes):
        base = usage_event(key, n, at=AT + dt.timedelta(minutes=n), model="gpt-small", cost="0.01")
        return dataclasses.replace(base, **changes)

    write_events(
        [
            event(a, 1),
            event(
                a, 2, status=502, error_type="upstream_error", attempts=3, fell_back=True, latency_ms=950.0
            ),
            event(a, 3, model="claude-sonnet-4", provider="anthropic", deployment_id=7, latency_ms=120.0),
            event(a, 4, cache_hit=True, cost_usd=0, latency_ms=2.0),
            event(a, 5, endpoint="embeddings", created_at=(AT + dt.timedelta(days=1)).timestamp()),
            event(b, 6, status=429, error_type="rate_limited"),
            event(b, 7, client_request_id="client-77"),
            event(b, 8, created_at=(AT + dt.timedelta(minutes=7)).timestamp()),  # the same time as 7
        ]
    )
    return a, b


def ids(params: dict[str, str]) -> list[str]:
    rows, _ = page_of(filtered(params).records)
    return [r.request_id.split("_")[2] for r in rows]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["5", "8", "7", "6", "4", "3", "2", "1"]),
        ({"tenant": "acme"}, ["5", "4", "3", "2", "1"]),
        ({"tenant": "nobody"}, []),
        ({"model": "claude-sonnet-4"}, ["3"]),
        ({"provider": "anthropic"}, ["3"]),
        ({"deployment": "7"}, ["3"]),
        ({"status": "502"}, ["2"]),
        ({"status": "errors"}, ["6", "2"]),
        ({"status": "4xx"}, ["6"]),
        ({"endpoint": "embeddings"}, ["5"]),
        ({"cache_hit": "yes"}, ["4"]),
        ({"cache_hit": "no", "tenant": "acme", "end": "2026-03-10"}, ["3", "2", "1"]),
        ({"start": "2026-03-11", "end": "2026-03-11"}, ["5"]),
        ({"latency_min": "100"}, ["3", "2"]),
        ({"latency_min": "100", "latency_max": "500"}, ["3"]),
        ({"q": "client-77"}, ["7"]),
        ({"tenant": "acme", "status": "errors", "latency_min": "900"}, ["2"]),
    ],
)
def test_each_filter_selects_exactly_its_records(records, params, expected):
    assert ids(params) == expected


def test_a_key_filter_and_unusable_values(records):
    _, b = records
    assert ids({"key": ApiKey.objects.get(pk=b.key_id).prefix}) == ["8", "7", "6"]
    assert ids({"key": "gw-nope"}) == []
    bad = filtered({"start": "yesterday", "latency_max": "fast"})
    assert bad.problems == ["start: a date as YYYY-MM-DD", "latency_max: a number of milliseconds"]
    assert list(bad.records) == []


def test_keyset_pages_cover_every_record_once_in_order(records):
    seen, cursor, pages = [], "", 0
    while pages < 10:
        rows, cursor = page_of(filtered({}).records, cursor, size=3)
        seen.extend(r.request_id.split("_")[2] for r in rows)
        pages += 1
        if not cursor:
            break
    assert pages == 3
    assert seen == ["5", "8", "7", "6", "4", "3", "2", "1"]


def test_the_list_page_and_its_next_page_link(records, client):
    client.force_login(platform_staff("ops"))
    html = client.get("/admin/requests/", {"tenant": "acme", "status": "errors"}).content.decode()
    assert html.count('<tr class="request-row">') == 1
    assert "$0.01" in html
    assert 'id="older-page"' not in html
    everything = client.get("/admin/requests/").content.decode()
    assert everything.count('<tr class="request-row">') == 8


def test_a_bearer_tokens_request_shows_its_subject(make_key, client):
    key = make_key("acme", name="a")
    event = usage_event(key, 1, at=AT, model="gpt-small", cost="0.01")
    write_events([dataclasses.replace(event, key_id=0, key_prefix="", subject="ada@acme.example")])
    record = UsageRecord.objects.get()
    assert (record.key_id, record.subject) == (None, "ada@acme.example")
    client.force_login(platform_staff("ops"))
    listed = client.get("/admin/requests/").content.decode()
    assert listed.count('<tr class="request-row">') == 1
    assert "<td>token: ada@acme.example</td>" in listed
    page = client.get(f"/admin/requests/{record.pk}/").content.decode()
    assert '<td id="subject">ada@acme.example</td>' in page


def test_a_requests_page_shows_its_content_only_for_a_tenant_that_logs_it(records, client):
    a, b = records
    store = ContentStore()
    logged = UsageRecord.objects.get(request_id__startswith=f"req_{a.key_id}_2_")
    store.submit(
        request_id=logged.request_id,
        created_at=logged.created_at.timestamp(),
        tenant_id=a.tenant.pk,
        content=lambda: (["I am jo@example.com", "second"], "Call 415-555-2671"),
    )
    assert store.wait_idle(10)
    (stored,) = RequestContent.objects.all()
    assert stored.tenant_id == a.tenant.pk
    with connection.cursor() as cursor:  # encrypted at rest: no text of it in the table
        cursor.execute("SELECT prompt || reply FROM accounting_requestcontent")
        (raw,) = cursor.fetchone()
    assert "second" not in raw and "Call" not in raw and raw.startswith("gAAAA")

    client.force_login(platform_staff("ops"))
    html = client.get(f"/admin/requests/{logged.pk}/").content.decode()
    assert '<td id="attempts">3 (answered by a fallback)</td>' in html
    assert '<td id="status">502 (upstream_error)</td>' in html
    assert '<td id="cost">$0.01</td>' in html
    assert re.search(r'<pre class="content-prompt">I am \[EMAIL:[^\]]+\]</pre>', html)
    assert '<pre class="content-prompt">second</pre>' in html
    assert re.search(r'<pre class="content-reply">Call \[PHONE:[^\]]+\]</pre>', html)
    assert "jo@example.com" not in html and "415-555-2671" not in html

    other = UsageRecord.objects.get(request_id__startswith=f"req_{b.key_id}_6_")
    html = client.get(f"/admin/requests/{other.pk}/").content.decode()
    assert "No content: the tenant does not log content." in html
    assert "content-prompt" not in html
    unlogged = UsageRecord.objects.get(request_id__startswith=f"req_{a.key_id}_1_")
    html = client.get(f"/admin/requests/{unlogged.pk}/").content.decode()
    assert "No content stored for this request" in html


def test_contents_past_their_retention_are_purged(records, settings):
    settings.GATEWAY_CONTENT_RETENTION_DAYS = 30
    now = dt.datetime.now(dt.UTC)
    for n, age in enumerate((31, 29)):
        RequestContent.objects.create(
            request_id=f"r{n}", created_at=now - dt.timedelta(days=age), tenant_id=1, prompt="x", reply="y"
        )
    assert purge_request_content() == 1
    assert list(RequestContent.objects.values_list("request_id", flat=True)) == ["r1"]
    assert purge_request_content() == 0


def test_staff_only(records, client):
    record = UsageRecord.objects.first()
    for path in ("/admin/requests/", f"/admin/requests/{record.pk}/"):
        assert client.get(path).status_code == 302
    client.force_login(User.objects.create_user("plain"))
    assert client.get("/admin/requests/").status_code == 302
