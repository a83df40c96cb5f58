"""One request's bookkeeping at the edge: its id and timings (for ``x-request-id`` and
``x-gateway-overhead-ms``) and, once admitted, the usage event it must emit exactly once."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from decimal import Decimal

from accounting.pricing import PriceTable, PriceVersion, request_cost
from accounting.recorder import UsageEvent
from gateway_site.observability import metrics
from gateway_site.observability.access_log import log_admitted, response_text
from gateway_site.observability.tracing import StreamEnd
from gateway_site.runtime.usage_sink import UsageSink
from providers.kinds.registry import kind
from providers.tokens import count_message_tokens, count_tokens
from providers.types import DeploymentConfig, Usage
from quotas.authentication.registry import KeyContext
from quotas.budget import to_micro
from quotas.limiter import Admission
from routing.router import RoutePlan

logger = logging.getLogger("gateway.api")


@dataclass(slots=True)
class Exchange:
    request_id: str
    client_request_id: str
    started: float = field(default_factory=time.perf_counter)
    started_wall: float = field(default_factory=time.time)
    upstream_seconds: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)  # added to every response (x-ratelimit-*)
    model: str = ""  # the public model, once known to exist (a metrics label)
    key: KeyContext | None = None  # once authenticated
    tracked: bool = False  # admitted: the usage tracker counts it (metrics) and logs its access line

    @property
    def public_id(self) -> str:
        return self.client_request_id or self.request_id

    def overhead_ms(self) -> float:
        return max(0.0, (time.perf_counter() - self.started - self.upstream_seconds) * 1000)


def message_texts(raw: dict[str, object]) -> list[str]:
    messages = raw.get("messages")
    texts: list[str] = []
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p)
    return texts


def price_in_force(table: PriceTable | None, deployment: DeploymentConfig, moment: float) -> PriceVersion:
    """The deployment's price version in force at ``moment``, else its own prices (``id`` None)."""
    version = table.at(deployment.id, moment) if table is not None else None
    return version or PriceVersion(
        id=None,
        input_per_million=deployment.prices.input_per_million,
        output_per_million=deployment.prices.output_per_million,
        cached_input_per_million=deployment.prices.cached_input_per_million,
    )


@dataclass(slots=True)
class UsageTracker:
    """Collects what happened to an admitted request, emits one ``UsageEvent`` and settles its
    admission (the reserved tokens and cost replaced by the actual ones, parallel slots freed),
    both through ``writer`` (a ``gateway_site.runtime.usage_sink.UsageSink``)."""

    writer: UsageSink
    exchange: Exchange
    key: KeyContext
    model: str
    route_plan: RoutePlan
    body: dict[str, object]
    streamed: bool = False
    endpoint: str = "chat.completions"
    admission: Admission | None = None
    status: int = 200
    error_type: str = ""
    usage: Usage | None = None
    streamed_text: list[str] = field(default_factory=list)
    first_token_at: float | None = None
    client_disconnected: bool = False
    cache_hit: bool = False  # set by the response cache: recorded at zero cost, with the cost saved
    response_body: bytes = b""  # a non-streamed answer, for content logging
    handed_off: bool = False  # a streamed body finishes it (``hand_off``)
    finished: bool = False

    def __post_init__(self) -> None:
        self.exchange.tracked = True
        metrics.request_started()

    def on_text(self, text: str) -> None:
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        self.streamed_text.append(text)

    def fail(self, *, status: int, error_type: str) -> None:
        self.status, self.error_type = status, error_type

    def disconnected(self) -> None:
        self.client_disconnected = True
        self.status, self.error_type = 499, "client_disconnected"

    def _final_usage(self) -> tuple[Usage, bool]:
        if self.usage is not None:
            return self.usage, False
        if self.status >= 400 and not self.streamed_text and not self.client_disconnected:
            return Usage(prompt_tokens=0, completion_tokens=0), False
        # The upstream did not report usage (stream cut short, client gone): count what went through.
        if self.endpoint == "embeddings":
            prompt = sum(count_tokens(text) for text in self._inputs())
        else:
            prompt = count_message_tokens(message_texts(self.body))
        return Usage(prompt_tokens=prompt, completion_tokens=count_tokens("".join(self.streamed_text))), True

    def stream_end(self) -> StreamEnd:
        """How the stream ended, for its span."""
        usage = self.usage
        return StreamEnd(
            status=self.status,
            error_type=self.error_type,
            prompt_tokens=usage.prompt_tokens if usage is not None else None,
            completion_tokens=usage.completion_tokens if usage is not None else None,
        )

    def hand_off(self) -> None:
        """A streamed body holds the tracker from here on: it finishes it when the stream ends
        or the response is closed, not the view's guard."""
        self.handed_off = True

    def finish(self) -> None:
        """Emit the request's one usage event and settle its admission, whatever failed before:
        an event that cannot be built as usual is still emitted, as a server error, so the
        reservation is released and the request recorded. Never raises; runs once."""
        if self.finished:
            return
        self.finished = True
        try:
            event, tokens = self.build_event()
        except Exception:
            logger.exception("usage event of %s could not be built", self.exchange.request_id)
            event = self.fallback_event()
            tokens = event.prompt_tokens + event.completion_tokens
        self.emit(event, tokens=tokens)

    def emit(self, event: UsageEvent, *, tokens: int) -> None:
        """Hand ``event`` to the sink (which settles the admission with it), then observe it."""
        try:
            self.writer.emit(
                event, admission=self.admission, tokens=tokens, cost_micro=to_micro(event.cost_usd)
            )
        except Exception:
            logger.exception("usage event of %s not emitted", event.request_id)
        try:
            overhead_ms = self.exchange.overhead_ms()
            metrics.observe_finish(event, overhead_ms=overhead_ms, calls=self.route_plan.calls)
            log_admitted(
                event,
                route_plan=self.route_plan,
                overhead_ms=overhead_ms,
                content=self._content if self.key.log_content else None,
            )
        except Exception:
            logger.exception("request %s not observed", event.request_id)

    def build_event(self) -> tuple[UsageEvent, int]:
        """The usage event of the request as it ended, and its total tokens (for settlement)."""
        usage, estimated = self._final_usage()
        deployment = self.route_plan.deployment
        prices = price_in_force(self.writer.price_table(), deployment, self.exchange.started_wall)
        upstream_cost = request_cost(
            rules=kind(deployment.provider.kind).token_rules,
            prices=prices,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            reasoning_tokens=usage.reasoning_tokens,
        )
        # A response served from the cache costs nothing upstream; it saved what it would have.
        cost = Decimal(0) if self.cache_hit else upstream_cost
        event = self._event(
            usage=usage,
            estimated=estimated,
            cost=cost,
            cost_saved=upstream_cost if self.cache_hit else Decimal(0),
            price_version_id=prices.id,
        )
        return event, usage.total_tokens

    def fallback_event(self) -> UsageEvent:
        """The event of a request whose usage could not be priced (a bug, logged): the status
        the client saw, error class ``accounting_error`` unless it failed otherwise, the tokens
        the upstream reported, no cost. It still releases the reservation and is recorded."""
        if not self.error_type:
            self.error_type = "accounting_error"
        usage = self.usage or Usage(prompt_tokens=0, completion_tokens=0)
        return self._event(
            usage=usage, estimated=False, cost=Decimal(0), cost_saved=Decimal(0), price_version_id=None
        )

    def _event(
        self,
        *,
        usage: Usage,
        estimated: bool,
        cost: Decimal,
        cost_saved: Decimal,
        price_version_id: int | None,
    ) -> UsageEvent:
        deployment = self.route_plan.deployment
        return UsageEvent(
            request_id=self.exchange.request_id,
            client_request_id=self.exchange.client_request_id,
            created_at=self.exchange.started_wall,
            tenant_id=self.key.tenant_id,
            tenant_name=self.key.tenant_name,
            key_id=self.key.key_id,
            key_prefix=self.key.key_prefix,
            endpoint=self.endpoint,
            model=self.model,
            deployment_id=deployment.id,
            provider=deployment.provider.name,
            upstream_model=deployment.upstream_model,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            usage_estimated=estimated,
            cost_usd=cost,
            price_version_id=price_version_id,
            cache_hit=self.cache_hit,
            cost_saved_usd=cost_saved,
            status=self.status,
            error_type=self.error_type,
            streamed=self.streamed,
            client_disconnected=self.client_disconnected,
            latency_ms=(time.perf_counter() - self.exchange.started) * 1000,
            upstream_latency_ms=self.route_plan.upstream_seconds * 1000,
            ttft_ms=(
                (self.first_token_at - self.exchange.started) * 1000
                if self.first_token_at is not None
                else None
            ),
        )

    def _inputs(self) -> list[str]:
        """An embeddings request's texts (token-id inputs have none)."""
        value = self.body.get("input")
        return [text for text in (value if isinstance(value, list) else [value]) if isinstance(text, str)]

    def _content(self) -> tuple[list[str], str]:
        if self.endpoint == "embeddings":  # the inputs that were embedded; no completion
            return self._inputs(), ""
        completion = "".join(self.streamed_text) or response_text(self.response_body)
        return message_texts(self.body), completion
