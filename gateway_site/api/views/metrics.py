"""``GET /metrics``: the Prometheus text format, for clients from
``GATEWAY_METRICS_ALLOWED_NETWORKS`` (403 otherwise) presenting ``Authorization: Bearer
GATEWAY_METRICS_TOKEN`` when one is set (401 otherwise). The scrape-time gauges (breakers,
provider health, usage backlog) are read here, from this process's runtime. With
``GATEWAY_METRICS_TENANT_LABELS=false`` the scrape tells no tenant apart (``tenant_blind``)."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from django.conf import settings
from django.http import HttpRequest, HttpResponse

from accounting.outbox import GROUP, outbox_stream
from gateway_site.observability.exposition import client_allowed, exposition, token_accepted
from gateway_site.observability.metrics import (
    BREAKER_STATES,
    ScrapeState,
    TenantBlind,
    deployment_label,
    observe_redis_error,
)
from gateway_site.runtime.process import Runtime, get_runtime
from gateway_site.runtime.snapshot import ConfigSnapshot
from quotas.access import AccessPolicy, model_allowed
from quotas.stores.redis_target import async_client

OUTBOX_TIMEOUT_SECONDS = 1.0


def _plain(status: int, text: str) -> HttpResponse:
    return HttpResponse(text + "\n", status=status, content_type="text/plain; charset=utf-8")


async def metrics(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        response = _plain(405, "Method not allowed; use GET.")
        response["Allow"] = "GET"
        return response
    if not client_allowed(request.META.get("REMOTE_ADDR", ""), settings.GATEWAY_METRICS_ALLOWED_NETWORKS):
        return _plain(403, "Metrics are not served to this address.")
    if not token_accepted(request.headers.get("authorization"), settings.GATEWAY_METRICS_TOKEN):
        response = _plain(401, "A valid bearer token is required.")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    runtime = get_runtime()
    state = await scrape_state(runtime)
    # Reading the workers' files (multiprocess mode) is disk I/O: off the event loop.
    snapshot = runtime.watcher.current()
    blind = None if settings.GATEWAY_METRICS_TENANT_LABELS else tenant_blind(snapshot)
    body, content_type = await asyncio.to_thread(
        exposition, state, blind=blind, accept=request.headers.get("accept", "")
    )
    return HttpResponse(body, content_type=content_type)


def tenant_blind(snapshot: ConfigSnapshot) -> TenantBlind:
    """The models every tenant with a key may use by its tenant's access rules (a key's own
    list narrows within its tenant and tells none apart), and the deployments serving them."""
    rules = {(key.policy.tenant_allow, key.policy.tenant_deny) for key in snapshot.keys.by_hash.values()}
    policies = [AccessPolicy(tenant_allow=allow, tenant_deny=deny, key_allow=()) for allow, deny in rules]
    routes = snapshot.catalog.models
    open_models = frozenset(name for name in routes if all(model_allowed(p, name) for p in policies))
    return TenantBlind(
        open_models=open_models,
        open_deployments=frozenset(
            deployment_label(d.provider.name, d.upstream_model)
            for name in open_models
            for d in routes[name].deployments
        ),
    )


async def scrape_state(runtime: Runtime) -> ScrapeState:
    """The scrape-time values, read on the event loop (the boards belong to it)."""
    breakers: dict[str, tuple[str, int]] = {}
    board = runtime.router().breakers
    for route in runtime.watcher.current().catalog.models.values():
        for d in route.deployments:
            label = deployment_label(d.provider.name, d.upstream_model)
            state = BREAKER_STATES[board.get(d.id).state]
            breakers[label] = (d.provider.name, max(state, breakers.get(label, ("", 0))[1]))
    pending, lag = await _outbox_backlog() if settings.REDIS_URL else (None, None)
    return ScrapeState(
        breakers=breakers,
        outbox_pending=pending,
        outbox_lag=lag,
        writer_queue=runtime.usage.writer.queued(),
    )


async def _outbox_backlog() -> tuple[int | None, int | None]:
    """The ledger consumer group's pending entries and lag (0, 0 before the stream exists)."""
    client = async_client(settings.REDIS_URL, timeout=OUTBOX_TIMEOUT_SECONDS)
    try:
        groups = await client.xinfo_groups(outbox_stream(settings.GATEWAY_REDIS_PREFIX))
    except aioredis.ResponseError:
        return 0, 0  # no stream yet: nothing was ever appended
    except (aioredis.RedisError, OSError):
        observe_redis_error("metrics")
        return None, None
    finally:
        await client.aclose()
    for group in groups:
        name = group.get("name")
        if name in (GROUP, GROUP.encode()):
            lag = group.get("lag")
            return int(group.get("pending") or 0), None if lag is None else int(lag)
    return 0, 0
