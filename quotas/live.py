"""The live state of cost quotas for the admin's lists: each quota's spend and reservations in
its current period, read from the counters admission decides on (not from the usage records,
which lag by the usage writer's flush).

With ``REDIS_URL``: one pipelined round trip for a whole page of quotas (the same script as
``GET /v1/usage``). Without it: the in-process store of this process's limiter, which the
runtime hands over with ``use_local_store`` when it starts (each process counts on its own,
as it admits on its own). ``None`` when the counters cannot be read."""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import redis
from django.conf import settings

from quotas.authentication.registry import quota_policy
from quotas.budget import from_micro
from quotas.models import CostQuota
from quotas.policy import QuotaLine, quota_line
from quotas.stores.base import QuotaState
from quotas.stores.local import LocalStore
from quotas.stores.redis_target import sync_client
from quotas.stores.scripts import QUOTA_STATES

logger = logging.getLogger(__name__)

_local_store: list[LocalStore] = []


def use_local_store(store: LocalStore) -> None:
    """The in-process store whose counters the admin shows when there is no ``REDIS_URL``."""
    _local_store[:] = [store]


@dataclass(frozen=True, slots=True)
class QuotaUsage:
    """One quota's current period: settled spend, reservations of requests in flight, and what
    a new request may still spend (never below zero)."""

    limit_usd: Decimal
    spent_usd: Decimal
    reserved_usd: Decimal

    @property
    def remaining_usd(self) -> Decimal:
        return max(self.limit_usd - self.spent_usd - self.reserved_usd, Decimal(0))

    @property
    def used_percent(self) -> int:
        """Spent and reserved, in percent of the limit (0 to 100, for a bar)."""
        used = self.spent_usd + self.reserved_usd
        if self.limit_usd <= 0:
            return 100 if used > 0 else 0
        return min(100, int((used * 100 / self.limit_usd).to_integral_value(rounding=ROUND_HALF_UP)))


@functools.cache
def _client(url: str) -> Any:
    return sync_client(url, timeout=settings.GATEWAY_REDIS_TIMEOUT_SECONDS)


def _redis_states(lines: Sequence[QuotaLine]) -> list[QuotaState]:
    pipe = _client(settings.REDIS_URL).pipeline(transaction=False)
    for line in lines:
        pipe.eval(QUOTA_STATES, 2, line.key, line.leases_key, "")
    replies = pipe.execute()
    return [QuotaState(int(reply[0]), int(reply[1])) for reply in replies]


def quota_usage(
    quotas: Sequence[CostQuota], *, now: dt.datetime | None = None
) -> dict[int, QuotaUsage] | None:
    """Each quota's usage by quota id (a key's quota needs its ``key`` loaded, for the tenant),
    or None when the counters cannot be read. No database query."""
    if not quotas:
        return {}
    moment = now or dt.datetime.now(dt.UTC)
    lines = [
        quota_line(
            quota_policy(quota),
            prefix=settings.GATEWAY_REDIS_PREFIX,
            tenant_id=quota.tenant_id or quota.key.tenant_id,  # type: ignore[union-attr]
            now=moment,
            tz=settings.GATEWAY_QUOTA_TIMEZONE,
        )
        for quota in quotas
    ]
    try:
        if settings.REDIS_URL:
            states = _redis_states(lines)
        elif _local_store:
            states = list(_local_store[0].quota_states_now(tuple(lines)))
        else:
            return None
    except (redis.RedisError, OSError) as exc:
        logger.warning("quota counters unreadable for the admin: %s", type(exc).__name__)
        return None
    return {
        quota.pk: QuotaUsage(
            limit_usd=quota.limit_usd,
            spent_usd=from_micro(state.spent),
            reserved_usd=from_micro(state.reserved),
        )
        for quota, state in zip(quotas, states, strict=True)
    }
