"""The response cache's part in a chat completion (``routing.cache`` holds the mechanism): after
admission, look the request up; a hit is answered from the cache (JSON, or replayed as SSE) and
recorded as a usage event at zero cost with the cost it saved; a miss that completes normally
is stored, streamed or not. Sets ``x-gateway-cache`` (and ``age`` on a hit)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from django.conf import settings
from django.http import HttpResponseBase

from gateway_site.api.dialects.base import Dialect
from gateway_site.api.exchange import Exchange
from gateway_site.api.outcome import Outcome
from gateway_site.api.parse.chat import ChatRequest, JsonObject
from gateway_site.api.responses import json_response
from gateway_site.api.settle import Settling
from gateway_site.api.stream import replay_response
from gateway_site.observability.metrics import observe_cache
from gateway_site.observability.tracing import mark_cache, span
from providers.types import Catalog, DeploymentConfig, ModelRoute, Usage
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
from routing.router import RoutePlan


@dataclass(slots=True)
class ChatCache:
    """One chat request's cache plan (None: bypass), what the lookup found, and the request's
    route plan (whose serving deployment a stored answer names)."""

    cache: ResponseCache
    plan: CachePlan | None
    route_plan: RoutePlan
    hit: CacheHit | None = None

    def store(self, body: bytes, *, usage: Usage | None) -> None:
        """Keep a fresh non-streaming answer when the request may be cached and it completed
        normally with its usage reported."""
        if self.plan is not None and completed_normally(body):
            self.put_answer(body, usage=usage)

    def capture(self) -> StreamStore | None:
        """What the SSE relay feeds so a streamed answer can be stored, if it may be."""
        return StreamStore(chat_cache=self) if self.plan is not None else None

    def put_answer(self, body: bytes, *, usage: Usage | None) -> None:
        """Store ``body`` (already checked to be complete) with its usage (none: not stored)."""
        if self.plan is None or usage is None:
            return
        self.cache.put(
            self.plan.key,
            body=body,
            usage=usage,
            deployment_id=self.route_plan.deployment.id,
            ttl_seconds=self.plan.ttl_seconds,
        )

    async def serve_hit(
        self,
        hit: CacheHit,
        *,
        chat: ChatRequest,
        catalog: Catalog,
        settling: Settling,
        exchange: Exchange,
        dialect: Dialect,
    ) -> HttpResponseBase:
        """The cached answer, recorded as a cache hit against the deployment that produced it
        (when it still exists) with the usage it reported: reported to ``settling`` for a JSON
        answer; a replayed stream finishes the request when it ends."""
        deployment = _deployment(catalog, hit.answer.deployment_id) or self.route_plan.deployment
        exchange.headers.update(self.route_plan.response_headers())
        exchange.headers["x-gateway-deployment"] = f"{deployment.provider.name}/{deployment.upstream_model}"
        outcome = Outcome(usage=hit.answer.usage, deployment=deployment, cache_hit=True)
        if not chat.stream:
            settling.served(replace(outcome, response_body=hit.answer.body))
            return json_response(await dialect.render_completion(hit.answer.body, chat))
        chunks, text = replay_chunks(hit.answer.body, include_usage=chat.include_usage)
        encoder = dialect.stream_encoder(chat)
        return replay_response(chunks, settling, encoder=encoder, cached=outcome, text=text)


@dataclass(slots=True)
class StreamStore:
    """Assembles a streamed answer and stores it once the stream ended normally."""

    chat_cache: ChatCache
    assembler: StreamAssembler = field(default_factory=StreamAssembler)

    def feed(self, payload: bytes) -> None:
        self.assembler.feed(payload)

    def complete(self, usage: Usage | None) -> None:
        body = self.assembler.completion()
        if body is not None:
            self.chat_cache.put_answer(body, usage=usage)


def _deployment(catalog: Catalog, deployment_id: int) -> DeploymentConfig | None:
    for route in catalog.models.values():
        for deployment in route.deployments:
            if deployment.id == deployment_id:
                return deployment
    return None


def cache_body(chat: ChatRequest) -> JsonObject:
    """What the cache key covers: the client's own request when it wrote it in another dialect
    (its translation may not carry everything that shapes the answer), else the chat body."""
    return chat.native.body if chat.native is not None else chat.raw


def may_answer_from_cache(control: CacheControl, *, route: ModelRoute, chat: ChatRequest) -> bool:
    """Whether a cached answer could serve this request (``consult_cache`` would look it up):
    then a model whose every deployment is unavailable is still looked up before the request is
    refused."""
    return may_read(
        cache_body(chat),
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
    tenant_id: int,
    route_plan: RoutePlan,
    exchange: Exchange,
    dialect: str,
) -> ChatCache:
    """Plan the request's caching and look it up (one Redis round trip on an L1 miss, only
    when the request may be read from the cache)."""
    plan = plan_caching(
        cache_body(chat),
        policy=route.cache,
        control=control,
        tenant_id=tenant_id,
        model=chat.model,
        max_request_ttl=settings.GATEWAY_CACHE_MAX_TTL_SECONDS,
        dialect=dialect,
    )
    result = ChatCache(cache=cache, plan=plan, route_plan=route_plan)
    if plan is not None and plan.read:
        with span("cache") as current:
            result.hit = await cache.get(plan.key, max_age=plan.max_age)
            mark_cache(current, level=result.hit.level if result.hit is not None else None)
        observe_lookup(result.hit, shared=cache.shared)
    headers = exchange.headers
    if result.hit is not None:
        headers["x-gateway-cache"] = "hit"
        headers["age"] = str(max(0, int(cache.now() - result.hit.answer.stored_at)))
    else:
        headers["x-gateway-cache"] = "miss" if plan is not None and plan.read else "bypass"
    return result
