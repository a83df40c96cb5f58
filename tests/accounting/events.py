"""Usage events for report tests: ``usage_event(key, n, ...)`` is request ``n`` of ``key`` at
``at`` with ``100 n`` prompt and ``10 n`` completion tokens (or ``tokens_per_n`` prompt and a
tenth of it completion), so sums over several are easy to check."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from accounting.recorder import UsageEvent


def usage_event(
    key, n: int, *, at: dt.datetime, model: str, cost: str, status: int = 200, tokens_per_n: int = 100
) -> UsageEvent:
    return UsageEvent(
        request_id=f"req_{key.key_id}_{n}_{at.timestamp()}",
        client_request_id="",
        created_at=at.timestamp(),
        tenant_id=key.tenant.pk,
        tenant_name=key.tenant.name,
        key_id=key.key_id,
        key_prefix=f"gw-{key.key_id}",
        model=model,
        provider="prov",
        status=status,
        latency_ms=1.0,
        prompt_tokens=tokens_per_n * n,
        completion_tokens=tokens_per_n // 10 * n,
        cost_usd=Decimal(cost),
    )
