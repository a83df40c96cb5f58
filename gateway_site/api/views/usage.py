"""``GET /v1/usage``: the calling key's spend this month and, for each cost quota that applies
to it (its own and its tenant's), the current period's spend, reservations in flight and what
remains, from the limiter's live counters (the same numbers admission decides on)."""

from __future__ import annotations

import datetime as dt

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

from accounting.reports import Scope, usage_summary
from gateway_site.api.authenticate import authenticate, require_method
from gateway_site.api.endpoint import api_endpoint
from gateway_site.api.exchange import Exchange
from gateway_site.api.responses import json_response
from gateway_site.runtime.process import get_runtime
from quotas.budget import from_micro
from quotas.errors import LimiterUnavailable, Overloaded
from quotas.policy import build_plan
from quotas.stores.base import StoreOverloaded, StoreUnavailable


@api_endpoint
async def key_usage(request: HttpRequest, exchange: Exchange) -> HttpResponseBase:
    require_method(request, "GET")
    runtime = get_runtime()
    _, key = await authenticate(request, exchange)
    now = dt.datetime.now(dt.UTC)
    plan = build_plan(
        key.limits,
        prefix=settings.GATEWAY_REDIS_PREFIX,
        request_id=exchange.request_id,
        model="",
        tokens=0,
        cost_micro=0,
        lease_ms=0,
        now=now,
        tz=settings.GATEWAY_QUOTA_TIMEZONE,
    )
    try:
        states = await runtime.limiter().store.quota_states(plan.quotas)
    except StoreOverloaded:
        raise Overloaded(
            "The gateway is overloaded; please retry shortly.", headers={"retry-after": "1"}
        ) from None
    except StoreUnavailable:
        raise LimiterUnavailable(
            "The gateway cannot read quota counters right now; please retry shortly.",
            headers={"retry-after": "1"},
        ) from None
    start = now.date().replace(day=1)
    if key.subject is not None:  # a bearer token: its subject's requests (key_id 0: no key)
        month = Scope(tenant_id=key.tenant_id, subject=key.subject, start=start, end=now.date())
    else:
        month = Scope(tenant_id=key.tenant_id, key_id=key.key_id, start=start, end=now.date())
    spent = await sync_to_async(usage_summary)(month)
    quotas = [
        {
            "owner": line.quota.owner,
            "period": line.quota.period,
            "period_start": line.period.start.isoformat() if line.period.start else None,
            "period_end": line.period.end.isoformat() if line.period.end else None,
            "hard": line.quota.hard,
            "limit_usd": str(line.quota.limit_usd),
            "spent_usd": str(from_micro(state.spent)),
            "reserved_usd": str(from_micro(state.reserved)),
            "remaining_usd": str(max(from_micro(line.limit_micro - state.spent - state.reserved), 0)),
        }
        for line, state in zip(plan.quotas, states, strict=True)
    ]
    return json_response(
        {
            "object": "usage",
            "key_prefix": key.key_prefix,
            **({"subject": key.subject} if key.subject is not None else {}),
            "tenant": key.tenant_name,
            "month": {"start": month.start.isoformat(), "end": month.end.isoformat(), **spent.as_dict()},
            "quotas": quotas,
        }
    )
