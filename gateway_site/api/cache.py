"""The response cache's part in a chat completion (``routing.cache`` holds the mechanism): after
admission, look the request up; a hit is answered from the cache (JSON, or replayed as SSE) and
recorded as a usage event at zero cost with the cost it saved; a miss that completes normally
is stored, streamed or not. Sets ``x-gateway-cache`` (and ``age`` on a hit)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.http import HttpResponseBase

from gateway_site.api.exchange import UsageTracker
from gateway_site.api.parse.chat import ChatRequest
from gateway_site.api.responses import json_response
from gateway_site.api.stream import replay_response
from gateway_site.observability.metrics import observe_cache
from gateway_site.observability.tracing import mark_cache, span
from providers.types import Catalog, DeploymentConfig, ModelRoute
from routing.cache import (
    CacheControl,
    CacheHit,
    CachePlan,
    ResponseCache,
    completed_normally,
    may_read,
    plan_caching,
)
from routing.cache_stream import StreamAssembler, replay_chunks


@dataclass(slots=True)
class ChatCache:
    """One chat request's cache plan (None: bypass) and what the lookup found."""

    cache: ResponseCache
    plan: CachePlan | None
    tracker: UsageTracker
    hit: CacheHit | None = None

    def store(self, body: bytes) -> None:
        """Keep a fresh non-streaming answer when the request may be cached and it completed
        normally with its usage reported."""
        if self.plan is not None and completed_normally(body):
            self.put_answer(body)

    def capture(self) -> StreamStore | None:
        """What the SSE relay feeds so a streamed answer can be stored, if it may be."""
        return StreamStore(chat_cache=self) if self.plan is not None else None

    def put_answer(self, body: bytes) -> None:
        """Store ``body`` (already checked to be complete) with the tracker's usage."""
        tracker = self.tracker
        if self.plan is None or tracker.usage is None or tracker.status != 200:
            return
        self.cache.put(
            self.plan.key,
            body=body,
            usage=tracker.usage,
            deployment_id=tracker.route_plan.deployment.id,
            ttl_seconds=self.plan.ttl_seconds,
        )

    def serve_hit(self, hit: CacheHit, *, chat: ChatRequest, catalog: Catalog) -> HttpResponseBase:
        """The cached answer, recorded as a cache hit against the deployment that produced it
        (when it still exists) with the usage it reported. Runs inside the request's ``settles``
        guard, which finishes a JSON answer; a replayed stream finishes when it ends."""
        tracker = self.tracker
        tracker.cache_hit, tracker.usage = True, hit.answer.usage
        tracker.route_plan.deployment = (
            _deployment(catalog, hit.answer.deployment_id) or tracker.route_plan.deployment
        )
        tracker.exchange.headers.update(tracker.route_plan.response_headers())
        if not chat.stream:
            return json_response(hit.answer.body)
        chunks, text = replay_chunks(hit.answer.body, include_usage=chat.include_usage)
        return replay_response(chunks, tracker, text=text)


@dataclass(slots=True)
class StreamStore:
    """Assembles a streamed answer and stores it once the stream ended normally."""

    chat_cache: ChatCache
    assembler: StreamAssembler = field(default_factory=StreamAssembler)

    def feed(self, payload: bytes) -> None:
        self.assembler.feed(payload)

    def complete(self) -> None:
        body = self.assembler.completion()
        if body is not None:
            self.chat_cache.put_answer(body)


def _deployment(catalog: Catalog, deployment_id: int) -> DeploymentConfig | None:
    for route in catalog.models.values():
        for deployment in route.deployments:
            if deployment.id == deployment_id:
                return deployment
    return None


def may_answer_from_cache(control: CacheControl, *, route: ModelRoute, chat: ChatRequest) -> bool:
    """Whether a cached answer could serve this request (``consult_cache`` would look it up):
    then a model whose every deployment is unavailable is still looked up before the request is
    refused."""
    return may_read(
        chat.raw,
        policy=route.cache,
        control=control,
        max_request_ttl=settings.GATEWAY_CACHE_MAX_TTL_SECONDS,
    )


def observe_lookup(hit: CacheHit | None, *, shared: bool) -> None:
    """Hits and misses per level: a lookup reaches L2 only after missing L1."""
    level = hit.level if hit is not None else None
    observe_cache("l1", hit=level == "l1")
    if shared and level != "l1":
        observe_cache("l2", hit=level == "l2")


async def consult_cache(
    cache: ResponseCache,
    *,
    control: CacheControl,
    route: ModelRoute,
    chat: ChatRequest,
    tracker: UsageTracker,
) -> ChatCache:
    """Plan the request's caching and look it up (one Redis round trip on an L1 miss, only
    when the request may be read from the cache)."""
    plan = plan_caching(
        chat.raw,
        policy=route.cache,
        control=control,
        tenant_id=tracker.key.tenant_id,
        model=chat.model,
        max_request_ttl=settings.GATEWAY_CACHE_MAX_TTL_SECONDS,
    )
    result = ChatCache(cache=cache, plan=plan, tracker=tracker)
    if plan is not None and plan.read:
        with span("cache") as current:
            result.hit = await cache.get(plan.key, max_age=plan.max_age)
            mark_cache(current, level=result.hit.level if result.hit is not None else None)
        observe_lookup(result.hit, shared=cache.shared)
    headers = tracker.exchange.headers
    if result.hit is not None:
        headers["x-gateway-cache"] = "hit"
        headers["age"] = str(max(0, int(cache.now() - result.hit.answer.stored_at)))
    else:
        headers["x-gateway-cache"] = "miss" if plan is not None and plan.read else "bypass"
    return result
