"""The request log (``/admin/requests/``, staff; a tenant admin sees only their tenants'
records): the usage records, newest first, filtered by tenant, key, model, provider,
deployment, status, endpoint, cache hit, date range and latency range, or found by request
id; and one request's page (``/admin/requests/<id>/``) with its attempts, tokens, cost,
latency, status and, for a tenant that logs content, its redacted prompt and reply
(``accounting.RequestContent``, decrypted here).

Fast at millions of records: no count, ever; pages are keyset pages ("older" carries the last
row's ``created_at`` and id), each filter has an index with ``created_at`` (migration
``accounting/0006_request_log``), so a page reads an index range newest first and stops after
``PAGE + 1`` rows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson
from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, render

from accounting.models import RequestContent, UsageRecord
from providers.secrets import SecretUnreadable, decrypt_secret
from quotas.models import ApiKey, Tenant
from quotas.tenancy import visible_tenant_ids

PAGE = 50
FILTERS = (
    "tenant",
    "key",
    "model",
    "provider",
    "deployment",
    "status",
    "endpoint",
    "cache_hit",
    "start",
    "end",
    "latency_min",
    "latency_max",
    "q",
)
ENDPOINTS = ("chat.completions", "embeddings", "responses", "messages")
STATUS_CLASSES = {
    "ok": Q(status__lt=400),
    "errors": Q(status__gte=400),
    "4xx": Q(status__gte=400, status__lt=500),
}
STATUS_CLASSES["5xx"] = Q(status__gte=500)
NOTHING = Q(pk__in=[])


@dataclass(frozen=True, slots=True)
class Filtered:
    records: QuerySet[UsageRecord]
    problems: list[str]


def _day(value: str) -> dt.datetime | None:
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        return None
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _condition(name: str, value: str, problems: list[str]) -> Q:
    """The condition of one filter; an unusable value matches nothing and says why."""
    if name == "tenant":
        tenant = Tenant.objects.filter(name=value).values_list("pk", flat=True).first()
        return Q(tenant_id=tenant) if tenant is not None else NOTHING
    if name == "key":
        keys = list(ApiKey.objects.filter(prefix=value).values_list("pk", flat=True)[:10])
        return Q(key_id__in=keys) if keys else NOTHING
    if name in ("model", "provider", "endpoint"):
        return Q(**{name: value})
    if name == "deployment":
        return Q(deployment_id=int(value)) if value.isdigit() else NOTHING
    if name == "status":
        if value in STATUS_CLASSES:
            return STATUS_CLASSES[value]
        return Q(status=int(value)) if value.isdigit() else NOTHING
    if name == "cache_hit":
        return Q(cache_hit=value == "yes")
    if name == "q":
        return Q(request_id=value) | Q(client_request_id=value)
    if name in ("start", "end"):
        moment = _day(value)
        if moment is None:
            problems.append(f"{name}: a date as YYYY-MM-DD")
            return NOTHING
        return (
            Q(created_at__gte=moment) if name == "start" else Q(created_at__lt=moment + dt.timedelta(days=1))
        )
    number = _number(value)
    if number is None:
        problems.append(f"{name}: a number of milliseconds")
        return NOTHING
    return Q(latency_ms__gte=number) if name == "latency_min" else Q(latency_ms__lte=number)


def filtered(params: QueryDict | dict[str, str]) -> Filtered:
    """The records the filters in ``params`` select (empty values ignored), unordered."""
    problems: list[str] = []
    condition = Q()
    for name in FILTERS:
        value = (params.get(name) or "").strip()
        if value:
            condition &= _condition(name, value, problems)
    return Filtered(UsageRecord.objects.filter(condition), problems)


def page_of(
    records: QuerySet[UsageRecord], cursor: str = "", size: int = PAGE
) -> tuple[list[UsageRecord], str]:
    """One page, newest first, from ``cursor`` (the previous page's last ``<created_at>_<id>``):
    the rows and the cursor of the next (older) page, or "" at the end."""
    records = records.order_by("-created_at", "-id")
    moment, _, last_id = cursor.rpartition("_")
    if moment and last_id.isdigit():
        try:
            at = dt.datetime.fromisoformat(moment)
        except ValueError:
            at = None
        if at is not None:
            records = records.filter(created_at__lte=at).exclude(created_at=at, id__gte=int(last_id))
    rows = list(records[: size + 1])
    if len(rows) <= size:
        return rows, ""
    rows = rows[:size]
    return rows, f"{rows[-1].created_at.isoformat()}_{rows[-1].pk}"


def _visible(request: HttpRequest, records: QuerySet[UsageRecord]) -> QuerySet[UsageRecord]:
    """A tenant admin's records only (``quotas.tenancy``); platform staff see every tenant's."""
    ids = visible_tenant_ids(request.user)
    return records if ids is None else records.filter(tenant_id__in=sorted(ids))


def request_log(request: HttpRequest) -> HttpResponse:
    selection = filtered(request.GET)
    rows, cursor = page_of(_visible(request, selection.records), request.GET.get("after", ""))
    kept = {name: request.GET[name] for name in FILTERS if request.GET.get(name)}
    context: dict[str, Any] = {
        **admin.site.each_context(request),
        "title": "Request log",
        "rows": rows,
        "values": kept,
        "problems": selection.problems,
        "older": f"?{urlencode({**kept, 'after': cursor})}" if cursor else "",
        "first": f"?{urlencode(kept)}" if request.GET.get("after") else "",
        "endpoints": ENDPOINTS,
        "status_classes": ("ok", "errors", "4xx", "5xx"),
        "page_size": PAGE,
    }
    return render(request, "admin/console/request_log.html", context)


def _content(record: UsageRecord) -> dict[str, object] | None:
    stored = RequestContent.objects.filter(request_id=record.request_id).first()
    if stored is None:
        return None
    try:
        prompt = orjson.loads(decrypt_secret(stored.prompt))
        reply = decrypt_secret(stored.reply)
    except SecretUnreadable:
        return {"unreadable": True}
    return {"prompt": [str(text) for text in prompt], "reply": reply}


def request_detail(request: HttpRequest, record_id: int) -> HttpResponse:
    # Another tenant's request is a 404 for a tenant admin, as a missing one is.
    record = get_object_or_404(_visible(request, UsageRecord.objects.all()), pk=record_id)
    tenant = Tenant.objects.filter(pk=record.tenant_id or 0).only("log_content").first()
    context = {
        **admin.site.each_context(request),
        "title": f"Request {record.request_id}",
        "record": record,
        "logs_content": bool(tenant and tenant.log_content),
        "content": _content(record),
    }
    return render(request, "admin/console/request_detail.html", context)
