"""The admit stage: the request's limits (its key's and tenant's rate tiers, parallel slots
and cost quotas) decided in one limiter round trip, reserving what it may use. From admission on
the request is tracked: it must be settled and recorded exactly once (``gateway_site.api.settle``)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence

from django.conf import settings

from gateway_site.api.estimate import Estimate, max_cost
from gateway_site.api.exchange import Exchange
from gateway_site.api.settle import AdmittedRequest
from gateway_site.observability.metrics import (
    observe_refusal,
    observe_shed,
    observe_unchecked,
)
from gateway_site.observability.tracing import span
from gateway_site.runtime.process import Runtime, get_runtime
from providers.types import DeploymentConfig
from quotas.authentication.registry import KeyContext
from quotas.budget import to_micro
from quotas.errors import Overloaded, QuotaExceeded, RateLimited
from quotas.limiter import Admission, Limiter
from quotas.policy import build_plan
from routing.router import RoutePlan


def _lease_ms(deployments: Sequence[DeploymentConfig], *, deadline: float | None) -> int:
    """How long the reservation outlives a process that dies holding it: the longest the request
    can take to be answered (its model's deadline, which bounds retries and fallbacks, or the
    longest upstream deadline of its deployments) plus a margin."""
    default = settings.GATEWAY_UPSTREAM_TIMEOUT_SECONDS
    longest = max((d.provider.timeout_seconds or default) for d in deployments)
    if deadline is not None:
        longest = max(longest, deadline - time.perf_counter())
    return int((longest + settings.GATEWAY_LEASE_MARGIN_SECONDS) * 1000)


async def admit(
    limiter: Limiter,
    *,
    key: KeyContext,
    model: str,
    estimate: Estimate,
    deployments: Sequence[DeploymentConfig],
    exchange: Exchange,
    deadline: float | None = None,
) -> Admission:
    """One round trip to the limiter; raises the refusal (429, or 503 when failing closed).
    The ``x-ratelimit-*`` headers go on the exchange, so every later response carries them."""
    policy = key.limits
    if policy.empty:
        return Admission(plan=None, admitted_ms=0)
    plan = build_plan(
        policy,
        prefix=settings.GATEWAY_REDIS_PREFIX,
        request_id=exchange.request_id,
        model=model,
        tokens=estimate.tokens,
        cost_micro=to_micro(max_cost(deployments, estimate, get_runtime().watcher.current().prices))
        if policy.quotas
        else 0,
        lease_ms=_lease_ms(deployments, deadline=deadline),
        now=dt.datetime.now(dt.UTC),
        tz=settings.GATEWAY_QUOTA_TIMEZONE,
    )
    try:
        admission = await limiter.admit(plan)
    except (RateLimited, QuotaExceeded) as refusal:
        observe_refusal(tenant=key.tenant_name, model=model, quota=isinstance(refusal, QuotaExceeded))
        raise
    except Overloaded:
        observe_shed("limiter_lag")
        raise
    if admission.plan is None:  # the limiter could not be reached and fails open
        observe_unchecked()
    exchange.headers.update(admission.headers)
    return admission


async def admit_request(
    runtime: Runtime,
    *,
    key: KeyContext,
    model: str,
    estimate: Estimate,
    route_plan: RoutePlan,
    exchange: Exchange,
    body: dict[str, object],
    streamed: bool = False,
    endpoint: str = "chat.completions",
) -> AdmittedRequest:
    """Admit the request (one limiter round trip; raises the refusal) and return what from now
    on must be settled and recorded exactly once: the caller runs the rest inside
    ``settle.settling``."""
    with span("limits"):
        admission = await admit(
            runtime.limiter(),
            key=key,
            model=model,
            estimate=estimate,
            deployments=route_plan.candidates,
            exchange=exchange,
            deadline=route_plan.deadline,
        )
    return AdmittedRequest(
        sink=runtime.usage,
        exchange=exchange,
        key=key,
        model=model,
        route_plan=route_plan,
        body=body,
        streamed=streamed,
        endpoint=endpoint,
        admission=admission,
    )
