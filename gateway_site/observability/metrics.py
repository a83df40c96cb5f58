"""Prometheus metrics of the gateway: what is observed on the request path, and what ``/metrics``
collects at scrape time.

Observations happen in few places: ``request_started`` when a request is admitted (a usage
tracker is made), ``observe_finish`` when its usage event is emitted (``UsageTracker.finish``),
``observe_response`` for answers given without a tracker (refused before admission),
``observe_refusal`` where admission refuses, ``observe_cache`` where the response cache answers or
misses, ``observe_redis_error`` where a Redis call fails. Each metric's children are bound once
per label tuple and kept in a dict, so a warm observation is a dict lookup and prometheus-client's
own (per value) lock.

Labels are bounded by configuration: provider, public model, deployment (``provider/upstream
model``), status, token type, cache type, Redis component, and tenant only on the rate-limit
refusal counters. No key, user or request ids. Whoever may scrape sees every tenant's traffic:
with ``GATEWAY_METRICS_TENANT_LABELS=false`` the scrape drops the ``tenant`` label and shows a
model only when every tenant may use it (``TenantBlind``); the others are ``(restricted)``.

Under ``manage.py serve`` (``PROMETHEUS_MULTIPROC_DIR`` set) every worker writes its values to
files in that directory and ``/metrics`` sums them (``MultiProcessCollector``); the active
requests gauge uses ``livesum`` (dead workers drop out). Breaker state, provider health and the
usage backlog are not kept in files: they are read at scrape time by the worker that answers
(``ScrapeState``); the breakers are shared among workers through Redis, the outbox is one
stream, so any worker's view is the installation's, within a sync interval."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from accounting.recorder import UsageEvent

if TYPE_CHECKING:
    from routing.router import CallRecord

NO_PROVIDER = "none"  # the provider label of requests answered before any routing
TOKEN_TYPES = ("prompt", "completion", "cached", "reasoning", "cache_write")
CACHE_TYPES = ("l1", "l2")  # in-process LRU, Redis
REDIS_COMPONENTS = ("limiter", "usage_outbox", "routing_sync", "config_pubsub", "metrics")
SHED_REASONS = ("in_flight", "lag", "limiter_lag")
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}
RESTRICTED = "(restricted)"  # the model shown for one that not every tenant may use

LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
OVERHEAD_BUCKETS = (0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's own variable; ``serve`` sets it


def multiprocess_dir() -> str:
    """The directory of multiprocess mode, or "" (one process)."""
    return os.environ.get(MULTIPROC_ENV, "")


M = TypeVar("M", Counter, Histogram)


class _Family(Generic[M]):
    """A labelled metric with its children bound once per label tuple."""

    __slots__ = ("children", "metric")

    def __init__(self, metric: M) -> None:
        self.metric: M = metric
        self.children: dict[tuple[str, ...], M] = {}

    def __call__(self, *labels: str) -> M:
        child = self.children.get(labels)
        if child is None:
            child = self.children[labels] = self.metric.labels(*labels)
        return child


class GatewayMetrics:
    """Every metric the request path writes, registered in ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

        def counter(name: str, doc: str, labels: Sequence[str]) -> _Family[Counter]:
            return _Family(Counter(name, doc, labels, registry=registry))

        def histogram(
            name: str, doc: str, labels: Sequence[str], buckets: Sequence[float]
        ) -> _Family[Histogram]:
            return _Family(Histogram(name, doc, labels, registry=registry, buckets=buckets))

        self.requests = counter(
            "llm_gateway_requests", "Requests answered, by provider, public model, status and endpoint.",
            ("provider", "model", "status", "endpoint"),
        )  # fmt: skip
        self.duration = histogram(
            "llm_gateway_request_duration_seconds", "Time from request to the last byte (admitted requests).",
            ("provider", "model"), LATENCY_BUCKETS,
        )  # fmt: skip
        self.tokens = counter(
            "llm_gateway_tokens", "Tokens by type (prompt, completion, cached, reasoning, cache_write).",
            ("provider", "model", "type"),
        )  # fmt: skip
        self.cost = counter(
            "llm_gateway_cost_dollars", "Cost in US dollars at deployment prices.", ("provider", "model")
        )
        self.overhead = Histogram(
            "llm_gateway_overhead_seconds", "The gateway's own time per request: total minus time upstream.",
            registry=registry, buckets=OVERHEAD_BUCKETS,
        )  # fmt: skip
        self.ttft = histogram(
            "llm_gateway_time_to_first_token_seconds", "Time from request to the first content token.",
            ("provider", "model"), LATENCY_BUCKETS,
        )  # fmt: skip
        self.upstream_requests = counter(
            "llm_gateway_upstream_requests", "Upstream calls per deployment (status 0: no answer).",
            ("provider", "deployment", "status"),
        )  # fmt: skip
        self.upstream_duration = histogram(
            "llm_gateway_upstream_request_duration_seconds", "Duration of each upstream call per deployment.",
            ("provider", "deployment"), LATENCY_BUCKETS,
        )  # fmt: skip
        self.retries = counter(
            "llm_gateway_upstream_retries", "Upstream calls that were retries.", ("provider", "deployment")
        )
        self.fallbacks = counter(
            "llm_gateway_fallbacks", "Requests that called a fallback model's deployment.", ("model",)
        )
        self.rate_limited = counter(
            "llm_gateway_rate_limit_exceeded", "Requests refused by a rate or parallel limit.",
            ("tenant", "model"),
        )  # fmt: skip
        self.quota_exceeded = counter(
            "llm_gateway_quota_exceeded", "Requests refused by a hard cost quota.", ("tenant", "model")
        )
        self.unchecked = Counter(
            "llm_gateway_admitted_unchecked",
            "Requests admitted without rate-limit and quota checks: Redis unreachable, failing open.",
            registry=registry,
        )
        self.shed = counter(
            "llm_gateway_shed",
            "Requests refused at once with a 503 because the worker was full (in_flight), its event "
            "loop ran late (lag), or its limiter could not be heard in time for its own lag (limiter_lag).",
            ("reason",),
        )
        self.cache_hits = counter("llm_gateway_cache_hits", "Response cache hits.", ("cache_type",))
        self.cache_misses = counter("llm_gateway_cache_misses", "Response cache misses.", ("cache_type",))
        self.redis_errors = counter(
            "llm_gateway_redis_errors", "Failed Redis calls, by component.", ("component",)
        )
        self.active = Gauge(
            "llm_gateway_active_requests", "Admitted requests in flight (streams until they end).",
            registry=registry, multiprocess_mode="livesum",
        )  # fmt: skip
        for cache_type in CACHE_TYPES:
            self.cache_hits(cache_type)
            self.cache_misses(cache_type)
        for component in REDIS_COMPONENTS:
            self.redis_errors(component)
        for reason in SHED_REASONS:
            self.shed(reason)


@functools.cache
def get_metrics() -> GatewayMetrics:
    """The process's metrics, in a registry of their own (exposed as is by one process; in
    multiprocess mode their values go to files, collected by ``exposition_registry``)."""
    return GatewayMetrics(CollectorRegistry(auto_describe=True))


def request_started() -> None:
    """A request was admitted: it is in flight (its usage event will count it)."""
    get_metrics().active.inc()


def observe_finish(event: UsageEvent, *, overhead_ms: float, calls: Iterable[CallRecord]) -> None:
    """An admitted request ended (``event`` is its usage event; ``calls`` its upstream calls)."""
    m = get_metrics()
    provider, model = event.provider, event.model
    m.requests(provider, model, str(event.status), event.endpoint).inc()
    m.duration(provider, model).observe(event.latency_ms / 1000)
    for kind, count in (
        ("prompt", event.prompt_tokens),
        ("completion", event.completion_tokens),
        ("cached", event.cached_tokens),
        ("reasoning", event.reasoning_tokens),
        ("cache_write", event.cache_write_tokens),
    ):
        if count:
            m.tokens(provider, model, kind).inc(count)
    if event.cost_usd:
        m.cost(provider, model).inc(float(event.cost_usd))
    m.overhead.observe(overhead_ms / 1000)
    if event.ttft_ms is not None:
        m.ttft(provider, model).observe(event.ttft_ms / 1000)
    _observe_calls(m, calls, model=model)
    m.active.dec()


def _observe_calls(m: GatewayMetrics, calls: Iterable[CallRecord], *, model: str) -> None:
    fell_back = False
    for t in calls:
        d = t.deployment
        provider = d.provider.name
        deployment = deployment_label(provider, d.upstream_model)
        m.upstream_requests(provider, deployment, str(t.status)).inc()
        m.upstream_duration(provider, deployment).observe(t.seconds)
        if t.retry:
            m.retries(provider, deployment).inc()
        fell_back = fell_back or t.fallback
    if fell_back:
        m.fallbacks(model).inc()


def deployment_label(provider: str, upstream_model: str) -> str:
    """The ``deployment`` label: ``provider/upstream model``."""
    return f"{provider}/{upstream_model}"


def observe_response(*, tracked: bool, model: str, status: int, endpoint: str) -> None:
    """A response of an API view: counted here when no usage tracker counted it (``tracked``
    false: an error answered before admission or routing: 400, 401, 404, 429...). Successful
    untracked answers (``/v1/models``) are not requests to a model and are not counted.
    ``endpoint``: the API's name for the route (``chat.completions``, ``messages``...; empty for
    a path that names none)."""
    if tracked or status < 400:
        return
    get_metrics().requests(NO_PROVIDER, model, str(status), endpoint).inc()


def observe_refusal(*, tenant: str, model: str, quota: bool) -> None:
    """Admission refused a request: a hard cost quota (``quota``) or a rate or parallel limit."""
    m = get_metrics()
    (m.quota_exceeded if quota else m.rate_limited)(tenant, model).inc()


def observe_unchecked() -> None:
    """Admission could not reach Redis and admitted the request unchecked (failing open)."""
    get_metrics().unchecked.inc()


def observe_shed(reason: str) -> None:
    """A request refused by admission control (``SHED_REASONS``)."""
    get_metrics().shed(reason).inc()


def observe_cache(cache_type: str, *, hit: bool) -> None:
    """A response cache lookup (``cache_type``: one of ``CACHE_TYPES``)."""
    m = get_metrics()
    (m.cache_hits if hit else m.cache_misses)(cache_type).inc()


def observe_redis_error(component: str) -> None:
    """A Redis call failed (``component``: one of ``REDIS_COMPONENTS``)."""
    get_metrics().redis_errors(component).inc()


def redis_error_hook(component: str) -> Callable[[], None]:
    """A no-argument callback counting Redis errors of ``component``, for the packages that must
    not import this one (``quotas``, ``routing``)."""
    return functools.partial(observe_redis_error, component)


@dataclass(frozen=True, slots=True)
class ScrapeState:
    """What ``/metrics`` reads at scrape time, gathered on the event loop (``gateway_site.
    exposition``): each deployment's breaker state (deployment label -> (provider, state)),
    the outbox backlog (None: no Redis or unreadable) and the queue of this process's usage
    writer."""

    breakers: dict[str, tuple[str, int]] = field(default_factory=dict)
    outbox_pending: int | None = None
    outbox_lag: int | None = None
    writer_queue: int = 0


class ScrapeCollector(Collector):
    def __init__(self, state: ScrapeState) -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        s = self._state
        breaker = GaugeMetricFamily(
            "llm_gateway_breaker_state",
            "Circuit breaker per deployment: 0 closed, 1 half-open, 2 open.",
            labels=("provider", "deployment"),
        )
        healthy: dict[str, int] = dict.fromkeys((provider for provider, _ in s.breakers.values()), 0)
        for deployment, (provider, state) in sorted(s.breakers.items()):
            breaker.add_metric((provider, deployment), state)
            if state < BREAKER_STATES["open"]:
                healthy[provider] = 1
        health = GaugeMetricFamily(
            "llm_gateway_provider_health",
            "1 when some deployment of the provider takes traffic (breaker not open), else 0.",
            labels=("provider",),
        )
        for provider, value in sorted(healthy.items()):
            health.add_metric((provider,), value)
        yield breaker
        yield health
        yield GaugeMetricFamily(
            "llm_gateway_usage_writer_queue",
            "Usage events waiting in this process's writer for the database.",
            value=s.writer_queue,
        )
        if s.outbox_pending is not None:
            yield GaugeMetricFamily(
                "llm_gateway_usage_outbox_pending",
                "Outbox entries delivered to a ledger consumer and not yet stored.",
                value=s.outbox_pending,
            )
        if s.outbox_lag is not None:
            yield GaugeMetricFamily(
                "llm_gateway_usage_outbox_lag",
                "Outbox entries not yet delivered to the ledger consumer group.",
                value=s.outbox_lag,
            )


@dataclass(frozen=True, slots=True)
class TenantBlind:
    """What a scrape shows when it must not tell tenants apart: no ``tenant`` label; a model under
    its name only when it is one of ``open_models`` (every tenant may use it), else
    ``(restricted)``; a deployment only when it is one of ``open_deployments`` (it serves such a
    model), else ``provider/(restricted)``."""

    open_models: frozenset[str]
    open_deployments: frozenset[str]

    def relabel(self, labels: Mapping[str, str]) -> dict[str, str]:
        out = {name: value for name, value in labels.items() if name != "tenant"}
        model = out.get("model")
        if model and model not in self.open_models:
            out["model"] = RESTRICTED
        deployment = out.get("deployment")
        if deployment and deployment not in self.open_deployments:
            out["deployment"] = deployment_label(deployment.partition("/")[0], RESTRICTED)
        return out


class TenantBlindCollector(Collector):
    """``inner``'s metrics relabelled by ``blind``; samples that then share their labels are
    merged: counters and histograms add up, gauges keep the highest, ``_created`` the earliest."""

    def __init__(self, inner: Sequence[Collector], blind: TenantBlind) -> None:
        self._inner = inner
        self._blind = blind

    def collect(self) -> Iterator[Metric]:
        for collector in self._inner:
            for metric in collector.collect():
                yield self._relabelled(metric)

    def _relabelled(self, metric: Metric) -> Metric:
        merged: dict[tuple[str, tuple[tuple[str, str], ...]], Sample] = {}
        for sample in metric.samples:
            labels = self._blind.relabel(sample.labels)
            key = (sample.name, tuple(sorted(labels.items())))
            prior = merged.get(key)
            value = (
                sample.value
                if prior is None
                else _merged(sample.name, metric.type, prior.value, sample.value)
            )
            merged[key] = Sample(sample.name, labels, value, sample.timestamp)
        out = Metric(metric.name, metric.documentation, metric.type, metric.unit)
        out.samples = list(merged.values())
        return out


def _merged(name: str, kind: str, first: float, second: float) -> float:
    if name.endswith("_created"):
        return min(first, second)
    return max(first, second) if kind == "gauge" else first + second


def exposition_registry(state: ScrapeState, *, blind: TenantBlind | None = None) -> CollectorRegistry:
    """The registry a scrape renders: this process's metrics, or in multiprocess mode every
    worker's from the files, plus the scrape-time gauges; relabelled by ``blind`` when given."""
    registry = CollectorRegistry(auto_describe=False)
    directory = multiprocess_dir()
    sources: list[Collector] = [
        MultiProcessCollector(None, path=directory) if directory else get_metrics().registry,  # type: ignore[no-untyped-call]
        ScrapeCollector(state),
    ]
    for source in [TenantBlindCollector(sources, blind)] if blind is not None else sources:
        registry.register(source)  # a registry is a collector of its metrics
    return registry
