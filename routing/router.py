"""The router: orders a public model's deployments by its strategy (``routing.strategies``), then
calls them in that order, retrying retryable failures with backoff (``routing.retry``) and moving
on to the next deployment, then to the model's fallback models, until one answers or the
model's total deadline passes. ``RoutePlan`` records the plan, the deployment that served (or
failed last), the number of upstream calls and the time spent upstream.

A stream counts as served once its first content event arrived; until then a failure is
retried like any other (``_BufferedStream`` replays what was read). Nothing is retried after a
byte reached the client."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from providers.errors import UpstreamError, UpstreamHTTPError, UpstreamTimeout, UpstreamUnreachable
from providers.http import UpstreamHTTP
from providers.kinds.registry import adapter_for, embed, find, native_for
from providers.translation.embeddings import EmbeddingResult
from providers.translation.upstream import JsonObject, UpstreamCall, UpstreamStream
from providers.types import (
    Catalog,
    Completion,
    DeploymentConfig,
    ModelRoute,
    NativeRequest,
    ProviderConfig,
    StreamEvent,
    UpstreamTls,
)
from routing.breaker import BreakerBoard, BreakerPolicy
from routing.latency import LatencyBoard
from routing.retry import RetryPolicy, is_retryable, wait_before_retry
from routing.stats import StatsBoard
from routing.strategies import DeploymentHealth, Snapshot, by_priority, order_deployments
from routing.telemetry import attempt_span, record_outcome

T = TypeVar("T")
logger = logging.getLogger(__name__)


class NoDeploymentAvailable(UpstreamError):
    """Every deployment of the model (and of its fallbacks) is unavailable (breaker open)."""

    status = 503
    error_type = "upstream_error"
    code = "no_deployment_available"


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One upstream call of a request, for metrics, traces and logs: which deployment, the
    retry number on that deployment (0 for the first call), whether it served a fallback
    model, when it started (``time.perf_counter()``), how long it took, and how it ended
    (``status`` is 200 on success, the status the upstream's error answer maps to (as the
    client would see it), or 0 when no answer came back: timeout, unreachable, cancelled;
    ``error_type`` is empty on success)."""

    deployment: DeploymentConfig
    retry: int
    fallback: bool
    started: float
    seconds: float
    status: int
    error_type: str = ""


@dataclass(slots=True)
class RoutePlan:
    """The deployments a request may be sent to (``candidates``, in order, within ``deadline``)
    and, filled in as it runs, the upstream calls made (``calls``); ``deployment`` is the one
    that served (or was called last)."""

    deployment: DeploymentConfig
    candidates: tuple[DeploymentConfig, ...] = ()
    deadline: float = float("inf")  # time.perf_counter() value
    upstream_seconds: float = 0.0
    started: float = field(default_factory=time.perf_counter)
    primary: int = 1  # the first ``primary`` candidates are the model's own; the rest are fallbacks
    calls: list[CallRecord] = field(default_factory=list)

    @property
    def call_count(self) -> int:
        return len(self.calls)

    @property
    def retries(self) -> int:
        return sum(1 for t in self.calls if t.retry > 0)

    @property
    def fell_back(self) -> bool:
        return any(t.fallback for t in self.calls)

    def response_headers(self) -> dict[str, str]:
        d = self.deployment
        return {
            "x-gateway-attempts": str(self.call_count),
            "x-gateway-deployment": f"{d.provider.name}/{d.upstream_model}",
        }


class _BufferedStream:
    """An upstream stream whose first events were already read (to see it start well)."""

    def __init__(self, stream: UpstreamStream, head: list[StreamEvent], rest: AsyncIterator[StreamEvent]):
        self._stream, self._head, self._rest = stream, head, rest

    async def events(self) -> AsyncIterator[StreamEvent]:
        for event in self._head:
            yield event
        async for event in self._rest:
            yield event

    async def aclose(self) -> None:
        await self._stream.aclose()


class Router:
    """Owns the upstream connection pool (``client``, from ``providers.http``) and closes it,
    and the routing state of its process: round-robin turns, the latency board, the RNG."""

    def __init__(
        self,
        *,
        client: UpstreamHTTP,
        default_timeout: float,
        exploration: float = 0.1,
        retry: RetryPolicy | None = None,
        latency: LatencyBoard | None = None,
        breakers: BreakerBoard | None = None,
        stats: StatsBoard | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        tls_client: Callable[[UpstreamTls], UpstreamHTTP] | None = None,
    ) -> None:
        self._http = client
        # Providers with their own TLS (CA bundle, client certificate): a pool each, by settings.
        self._tls_client = tls_client
        self._tls_pools: dict[UpstreamTls, UpstreamHTTP] = {}
        self._retiring: set[asyncio.Task[None]] = set()
        self._default_timeout = default_timeout
        self._exploration = exploration
        self._retry = retry or RetryPolicy()
        self.latency = latency or LatencyBoard()
        self.breakers = breakers or BreakerBoard(BreakerPolicy())
        self.stats = stats or StatsBoard()
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._turns: dict[str, int] = {}  # each model's next round-robin turn

    async def aclose(self) -> None:
        for task in self._retiring:
            task.cancel()
        for pool in self._tls_pools.values():
            await pool.aclose()
        await self._http.aclose()

    def _http_for(self, provider: ProviderConfig) -> UpstreamHTTP:
        """The connection pool of the provider: the shared one, or the one of its TLS settings
        (made on first use; replaced when a rotated file changed them)."""
        tls = provider.tls
        if tls is None or self._tls_client is None:
            return self._http
        pool = self._tls_pools.get(tls)
        if pool is None:
            paths = (tls.ca_bundle, tls.client_cert, tls.client_key)
            for stale in [t for t in self._tls_pools if (t.ca_bundle, t.client_cert, t.client_key) == paths]:
                self._retire(self._tls_pools.pop(stale))
            try:
                pool = self._tls_client(tls)
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                logger.error("provider %s: TLS files unusable: %s", provider.name, type(exc).__name__)
                raise UpstreamUnreachable(
                    f"The provider '{provider.name}' TLS settings are unusable."
                ) from None
            self._tls_pools[tls] = pool
        return pool

    def _retire(self, pool: UpstreamHTTP) -> None:
        """Close a replaced pool once the requests it carries have had their whole deadline."""

        async def close_later() -> None:
            await asyncio.sleep(self._default_timeout)
            await pool.aclose()

        task = asyncio.get_running_loop().create_task(close_later())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    def _snapshot(
        self, route: ModelRoute, *, prompt_tokens: int, completion_tokens: int, take_turn: bool = True
    ) -> Snapshot:
        """The strategy's input; ``take_turn`` advances the model's round-robin turn (a
        fallback planned only in case peeks at it, so it does not skew the model's own
        rotation)."""
        averages = self.latency.averages()
        health = {
            d.id: DeploymentHealth(latency_ms=averages.get(d.id), available=self.breakers.allows(d.id))
            for d in route.deployments
        }
        turn = self._turns.get(route.name, 0)
        if take_turn:
            self._turns[route.name] = turn + 1
        return Snapshot(
            health=health,
            turn=turn,
            draw=self._rng.random(),
            explore=self._rng.random(),
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            exploration=self._exploration,
        )

    def plan(
        self,
        route: ModelRoute,
        *,
        catalog: Catalog | None = None,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        unavailable_too: bool = False,
    ) -> RoutePlan:
        """The deployments to try, in order: the model's by its strategy, then each fallback
        model's by its own. Raises ``NoDeploymentAvailable`` when there is none, unless
        ``unavailable_too``: then every deployment is planned in priority order, breakers
        ignored (the calls still check them, so an open one gets no traffic).

        A fallback model takes a round-robin turn only when the model itself has no available
        deployment (the fallback will serve); otherwise it is ordered by its current turn
        without moving it."""
        routes = [route, *(catalog.models[n] for n in route.fallbacks if catalog and n in catalog.models)]
        candidates: list[DeploymentConfig] = []
        primary = 0
        for each in routes:
            snapshot = self._snapshot(
                each,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                take_turn=each is route or primary == 0,
            )
            ordered = (
                by_priority(each.deployments)
                if unavailable_too
                else order_deployments(each.strategy, each.deployments, snapshot)
            )
            candidates.extend(d for d in ordered if all(d.id != c.id for c in candidates))
            if each is route:
                primary = len(candidates)  # may be 0: every deployment of the model itself is out
        if not candidates:
            raise NoDeploymentAvailable(f"No deployment of the model '{route.name}' is available right now.")
        timeout = route.timeout_seconds or self._default_timeout
        return RoutePlan(
            deployment=candidates[0],
            candidates=tuple(candidates),
            deadline=time.perf_counter() + timeout,
            primary=primary,
        )

    def _call(
        self, route_plan: RoutePlan, body: JsonObject, request_id: str, native: NativeRequest | None
    ) -> UpstreamCall:
        """The call to the planned deployment; a native request goes along when its kind speaks
        the dialect, and is refused here (nothing sent) when the translation lost a parameter."""
        deployment = route_plan.deployment
        provider_timeout = deployment.provider.timeout_seconds or self._default_timeout
        remaining = max(0.001, route_plan.deadline - time.perf_counter())
        return UpstreamCall(
            deployment=deployment,
            body=body,
            http=self._http_for(deployment.provider),
            timeout_seconds=min(provider_timeout, remaining),
            request_id=request_id,
            native=native_for(deployment, native),
        )

    async def _once(
        self,
        route_plan: RoutePlan,
        operation: Callable[[UpstreamCall], Awaitable[T]],
        call: UpstreamCall,
        *,
        retry: int,
        fallback: bool,
        kind: str = "chat",
    ) -> T:
        """One upstream call (one span); its outcome feeds the deployment's breaker, latency
        average and call counts and is appended to ``route_plan.calls``. A non-retryable error (a
        4xx) shows the deployment is up, so it counts as a success."""
        self.breakers.start(call.deployment.id)
        started = time.perf_counter()
        error: UpstreamError | None = None
        answered = False  # False: cancelled, or a bug of ours
        answer: object = None  # for the span: a completion's model and usage
        with attempt_span(call.deployment, operation=kind, retry=retry, fallback=fallback) as span:
            try:
                result = await operation(call)
                answer, answered = result, True
                return result
            except UpstreamError as exc:
                error, answered = exc, True
                raise
            finally:
                status, error_type = _ending(error, answered=answered)
                done = CallRecord(
                    deployment=call.deployment,
                    retry=retry,
                    fallback=fallback,
                    started=started,
                    seconds=time.perf_counter() - started,
                    status=status,
                    error_type=error_type,
                )
                self._account(route_plan, done, error=error, answered=answered)
                record_outcome(span, status=done.status, error_type=done.error_type, result=answer)

    def _account(
        self, route_plan: RoutePlan, done: CallRecord, *, error: UpstreamError | None, answered: bool
    ) -> None:
        """Feed one call's outcome to the breaker, the latency average, the call counts and
        ``route_plan.calls``. Only retryable failures count against the deployment; a cancelled
        call (or a bug of ours) just releases its half-open probe slot."""
        deployment_id, latency_ms = done.deployment.id, done.seconds * 1000
        failed = error is not None and is_retryable(error)
        (self.breakers.failed if failed else self.breakers.succeeded)(deployment_id)
        if answered:
            self.stats.record(deployment_id, failed=failed, latency_ms=latency_ms)
            if error is None:
                self.latency.observe(deployment_id, latency_ms)
        route_plan.upstream_seconds += done.seconds
        route_plan.calls.append(done)

    async def _run(
        self,
        route_plan: RoutePlan,
        body: JsonObject,
        request_id: str,
        operation: Callable[[UpstreamCall], Awaitable[T]],
        kind: str = "chat",
        native: NativeRequest | None = None,
    ) -> T:
        """Try the candidates in order with retries; raise the last failure when all failed.
        ``kind`` is the GenAI operation name of the attempts' spans (``chat``, ``embeddings``);
        ``native`` the request in the client's own dialect, if it has one."""
        last: UpstreamError | None = None
        for index, deployment in enumerate(route_plan.candidates or (route_plan.deployment,)):
            retry = 0
            fallback = index >= route_plan.primary
            while True:
                if not self.breakers.allows(deployment.id):
                    break  # opened (or probed by another request) since the plan
                route_plan.deployment = deployment
                if time.perf_counter() >= route_plan.deadline:
                    raise last or UpstreamTimeout("The model's deadline passed before an upstream answered.")
                try:
                    return await self._once(
                        route_plan,
                        operation,
                        self._call(route_plan, body, request_id, native),
                        retry=retry,
                        fallback=fallback,
                        kind=kind,
                    )
                except UpstreamError as exc:
                    last = exc
                    if not is_retryable(exc):
                        raise
                    remaining = route_plan.deadline - time.perf_counter()
                    wait = wait_before_retry(
                        self._retry, error=exc, retry=retry, draw=self._rng.random(), remaining=remaining
                    )
                    if wait is None:
                        break
                    await self._sleep(wait)
                    retry += 1
        if last is None:
            raise NoDeploymentAvailable("No deployment of the model is available right now.")
        raise last

    async def complete(
        self, route_plan: RoutePlan, body: JsonObject, *, request_id: str, native: NativeRequest | None = None
    ) -> Completion:
        async def operation(call: UpstreamCall) -> Completion:
            return await adapter_for(call.deployment.provider.kind).complete(call)

        return await self._run(route_plan, body, request_id, operation, native=native)

    async def open_stream(
        self, route_plan: RoutePlan, body: JsonObject, *, request_id: str, native: NativeRequest | None = None
    ) -> UpstreamStream:
        """Returns once the upstream stream produced its first content (or ended cleanly)."""
        return await self._run(route_plan, body, request_id, _open_started_stream, native=native)

    async def count_tokens(
        self, route_plan: RoutePlan, body: JsonObject, *, request_id: str, native: NativeRequest
    ) -> int | None:
        """The input tokens of ``native`` as counted by the first planned deployment whose kind
        counts its dialect (with retries, then the next such deployment: ``route_plan`` keeps
        only those); None when the first planned deployment cannot count (the caller counts)."""
        candidates = route_plan.candidates or (route_plan.deployment,)
        if not _counts(candidates[0], native):
            return None
        route_plan.primary = sum(1 for d in candidates[: route_plan.primary] if _counts(d, native))
        route_plan.candidates = tuple(d for d in candidates if _counts(d, native))

        async def operation(call: UpstreamCall) -> int:
            record = find(call.deployment.provider.kind)
            assert record is not None and record.token_counter is not None  # only those are planned
            return await record.token_counter(call)

        return await self._run(route_plan, body, request_id, operation, kind="count_tokens", native=native)

    async def embed(self, route_plan: RoutePlan, body: JsonObject, *, request_id: str) -> EmbeddingResult:
        return await self._run(route_plan, body, request_id, embed, kind="embeddings")


def _counts(deployment: DeploymentConfig, native: NativeRequest) -> bool:
    record = find(deployment.provider.kind)
    return (
        record is not None and record.token_counter is not None and native.dialect in record.native_dialects
    )


def _ending(error: UpstreamError | None, *, answered: bool) -> tuple[int, str]:
    """``CallRecord.status`` and ``error_type`` of a call: the status of the upstream's error
    answer (0 when none came back: timeout, unreachable; and when cancelled)."""
    if not answered:
        return 0, "cancelled"
    if error is None:
        return 200, ""
    return (error.status if isinstance(error, UpstreamHTTPError) else 0), error.error_type


async def _open_started_stream(call: UpstreamCall) -> UpstreamStream:
    """Open the stream and read up to its first content event; a failure before that (an error
    status, a transport error, an in-stream error event) raises, closing the stream."""
    stream = await adapter_for(call.deployment.provider.kind).open_stream(call)
    events = stream.events()
    head: list[StreamEvent] = []
    try:
        async for event in events:
            if event.error:
                raise UpstreamHTTPError(
                    "The upstream stream failed before its first content.",
                    status=502,
                    error_type="upstream_error",
                )
            head.append(event)
            if event.text or event.usage is not None:
                break
    except BaseException:
        await stream.aclose()
        raise
    return _BufferedStream(stream, head, events)
