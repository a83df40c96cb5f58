"""The router: picks the deployment for a public model and runs the upstream call.

Today the strategy is ``model``: the enabled deployment with the lowest priority value (ties:
the oldest). Retries, fallbacks, breakers and other strategies build on ``Attempt``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import httpx

from providers.adapters import UpstreamCall, UpstreamStream, adapter_for
from providers.adapters.base import JsonObject
from providers.adapters.embeddings import EmbeddingResult, embed
from providers.types import Completion, DeploymentConfig, ModelRoute


def select_deployment(route: ModelRoute) -> DeploymentConfig:
    """Pure: the deployment the ``model`` strategy serves from."""
    return min(route.deployments, key=lambda d: (d.priority, d.id))


@dataclass(slots=True)
class Attempt:
    """What the edge needs to account for one routed call, filled in as it runs."""

    deployment: DeploymentConfig
    upstream_seconds: float = 0.0
    started: float = field(default_factory=time.perf_counter)


class Router:
    def __init__(self, *, client: httpx.AsyncClient, default_timeout: float) -> None:
        self._client = client
        self._default_timeout = default_timeout

    async def aclose(self) -> None:
        await self._client.aclose()

    def plan(self, route: ModelRoute) -> Attempt:
        return Attempt(deployment=select_deployment(route))

    def _call(self, attempt: Attempt, body: JsonObject, request_id: str) -> UpstreamCall:
        deployment = attempt.deployment
        return UpstreamCall(
            deployment=deployment,
            body=body,
            client=self._client,
            timeout_seconds=deployment.provider.timeout_seconds or self._default_timeout,
            request_id=request_id,
        )

    async def complete(self, attempt: Attempt, body: JsonObject, *, request_id: str) -> Completion:
        adapter = adapter_for(attempt.deployment.provider.kind)
        started = time.perf_counter()
        try:
            return await adapter.complete(self._call(attempt, body, request_id))
        finally:
            attempt.upstream_seconds += time.perf_counter() - started

    async def open_stream(self, attempt: Attempt, body: JsonObject, *, request_id: str) -> UpstreamStream:
        adapter = adapter_for(attempt.deployment.provider.kind)
        started = time.perf_counter()
        try:
            return await adapter.open_stream(self._call(attempt, body, request_id))
        finally:
            attempt.upstream_seconds += time.perf_counter() - started

    async def embed(self, attempt: Attempt, body: JsonObject, *, request_id: str) -> EmbeddingResult:
        started = time.perf_counter()
        try:
            return await embed(self._call(attempt, body, request_id))
        finally:
            attempt.upstream_seconds += time.perf_counter() - started
