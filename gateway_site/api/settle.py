"""The settle stage: an admitted request is settled once and recorded once, whatever happened.

``AdmittedRequest`` is what admission hands on (who, what model, the route plan, the limiter's
claim). The view runs the rest inside ``settling``: the path that serves the request reports its
``Outcome`` (``served``), a streamed answer takes the request over (``hand_off``) and finishes it
when the stream ends, and whatever raises instead ends the request with the error's status and
class, keeping what was reported before it. ``finish`` is the one end of every request, admitted
or not: an admitted one's usage event is built (``usage_event``) and emitted (``emit``: its
settlement and its record, through the usage sink), then observed (metrics, access line)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from decimal import Decimal

from accounting.pricing import request_cost
from accounting.recorder import UsageEvent
from gateway_site.api.estimate import price_in_force
from gateway_site.api.exchange import Exchange
from gateway_site.api.outcome import Outcome
from gateway_site.api.parse.chat import message_texts
from gateway_site.observability import metrics
from gateway_site.observability.access_log import log_admitted, log_refused, response_text
from gateway_site.runtime.content_store import content_store
from gateway_site.runtime.usage_sink import UsageSink
from providers.kinds.registry import kind
from providers.tokens import count_message_tokens, count_tokens
from providers.types import Usage
from quotas.authentication.registry import KeyContext
from quotas.budget import to_micro
from quotas.limiter import Admission
from routing.router import RoutePlan

logger = logging.getLogger("gateway.api")


@dataclass(slots=True)
class AdmittedRequest:
    """A request that passed admission: from here on it must end in ``finish`` exactly once."""

    sink: UsageSink
    exchange: Exchange
    key: KeyContext
    model: str
    route_plan: RoutePlan
    body: dict[str, object]
    streamed: bool = False
    endpoint: str = "chat.completions"
    admission: Admission | None = None
    handed_off: bool = False  # a streamed body finishes it
    finished: bool = False

    def __post_init__(self) -> None:
        self.exchange.tracked = True
        metrics.request_started()

    def inputs(self) -> list[str]:
        """An embeddings request's texts (token-id inputs have none)."""
        value = self.body.get("input")
        return [text for text in (value if isinstance(value, list) else [value]) if isinstance(text, str)]


@dataclass(slots=True)
class Settling:
    """The guard's state: the outcome the serving path reported, if any yet."""

    request: AdmittedRequest
    outcome: Outcome = field(default_factory=Outcome)

    def served(self, outcome: Outcome) -> None:
        self.outcome = outcome

    def hand_off(self) -> None:
        """A streamed body holds the request from here on and finishes it when it ends."""
        self.request.handed_off = True


@contextmanager
def settling(request: AdmittedRequest) -> Iterator[Settling]:
    """The invariant of an admitted request: whatever the view raises from admission on (an
    upstream error, a cancellation, a bug at any stage), the request is finished once, with
    the status and class of what ended it. A body that was handed a stream but is not returned
    never finishes it, so a failure after the hand-off finishes it here."""
    state = Settling(request)
    try:
        yield state
    except BaseException as error:
        request.exchange.upstream_seconds = request.route_plan.upstream_seconds
        finish(request.exchange, state.outcome.ended_by(error), request=request)
        raise
    request.exchange.upstream_seconds = request.route_plan.upstream_seconds
    if not request.handed_off:
        finish(request.exchange, state.outcome, request=request)


def finish(
    exchange: Exchange,
    outcome: Outcome,
    *,
    request: AdmittedRequest | None,
    path: str = "",
    overhead_ms: float | None = None,
) -> None:
    """The one end of a request. An admitted one (``request``) emits its usage event (once: a
    second call does nothing) and is observed; one refused before admission is observed only
    (its access line names ``path`` and the ``overhead_ms`` its response header carries)."""
    if request is None:
        _observe_refused(exchange, outcome, path=path, overhead_ms=overhead_ms)
        return
    if request.finished:
        return
    request.finished = True
    try:
        event, tokens = usage_event(request, outcome)
    except Exception:
        logger.exception("usage event of %s could not be built", exchange.request_id)
        event, tokens = unpriced_event(request, outcome)
    emit(request, event, tokens=tokens, outcome=outcome)


def _observe_refused(exchange: Exchange, outcome: Outcome, *, path: str, overhead_ms: float | None) -> None:
    log_refused(
        request_id=exchange.request_id,
        client_request_id=exchange.client_request_id,
        path=path,
        key=exchange.key,
        status=outcome.status,
        error_type=outcome.error_type,
        latency_ms=exchange.overhead_ms() if overhead_ms is None else overhead_ms,
    )


def emit(request: AdmittedRequest, event: UsageEvent, *, tokens: int, outcome: Outcome) -> None:
    """Hand ``event`` to the sink (which settles the admission with it), then observe it."""
    try:
        cost_micro = to_micro(event.cost_usd)
        request.sink.emit(event, admission=request.admission, tokens=tokens, cost_micro=cost_micro)
    except Exception:
        logger.exception("usage event of %s not emitted", event.request_id)
    try:
        overhead_ms = request.exchange.overhead_ms()
        metrics.observe_finish(event, overhead_ms=overhead_ms, calls=request.route_plan.calls)
        content = (lambda: _content(request, outcome)) if request.key.log_content else None
        log_admitted(event, route_plan=request.route_plan, overhead_ms=overhead_ms, content=content)
        if content is not None:  # redacted, encrypted and stored by a thread (docs/console.md)
            content_store().submit(
                request_id=event.request_id,
                created_at=event.created_at,
                tenant_id=event.tenant_id,
                content=content,
            )
    except Exception:
        logger.exception("request %s not observed", event.request_id)


def usage_event(request: AdmittedRequest, outcome: Outcome) -> tuple[UsageEvent, int]:
    """The request's usage event, priced, and its total tokens (for settlement)."""
    usage, estimated = final_usage(request, outcome)
    deployment = outcome.deployment or request.route_plan.deployment
    prices = price_in_force(request.sink.price_table(), deployment, request.exchange.started_wall)
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
    cost = Decimal(0) if outcome.cache_hit else upstream_cost
    saved = upstream_cost if outcome.cache_hit else Decimal(0)
    event = _event(
        request, outcome, usage=usage, estimated=estimated, cost=cost, saved=saved, version=prices.id
    )
    return event, usage.total_tokens


def unpriced_event(request: AdmittedRequest, outcome: Outcome) -> tuple[UsageEvent, int]:
    """The event of a request whose usage could not be priced (a bug, logged): the status the
    client saw, error class ``accounting_error`` unless it failed otherwise, the tokens the
    upstream reported, no cost. It still releases the reservation and is recorded."""
    if not outcome.error_type:
        outcome = replace(outcome, error_type="accounting_error")
    usage = outcome.usage or Usage(prompt_tokens=0, completion_tokens=0)
    event = _event(
        request, outcome, usage=usage, estimated=False, cost=Decimal(0), saved=Decimal(0), version=None
    )
    return event, usage.total_tokens


def final_usage(request: AdmittedRequest, outcome: Outcome) -> tuple[Usage, bool]:
    """The usage to record, and whether the gateway counted it: as reported; none for a request
    that failed before anything went through; else counted from what went through (a stream cut
    short, a client gone before the upstream reported usage)."""
    if outcome.usage is not None:
        return outcome.usage, False
    if outcome.failed and not outcome.streamed_text and not outcome.client_disconnected:
        return Usage(prompt_tokens=0, completion_tokens=0), False
    if request.endpoint == "embeddings":
        prompt = sum(count_tokens(text) for text in request.inputs())
    else:
        prompt = count_message_tokens(message_texts(request.body))
    return Usage(prompt_tokens=prompt, completion_tokens=count_tokens(outcome.streamed_text)), True


def _event(
    request: AdmittedRequest,
    outcome: Outcome,
    *,
    usage: Usage,
    estimated: bool,
    cost: Decimal,
    saved: Decimal,
    version: int | None,
) -> UsageEvent:
    exchange, key = request.exchange, request.key
    deployment = outcome.deployment or request.route_plan.deployment
    first = outcome.first_token_at
    return UsageEvent(
        request_id=exchange.request_id,
        client_request_id=exchange.client_request_id,
        created_at=exchange.started_wall,
        tenant_id=key.tenant_id,
        tenant_name=key.tenant_name,
        key_id=key.key_id,
        key_prefix=key.key_prefix,
        subject=key.subject,
        endpoint=request.endpoint,
        model=request.model,
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
        price_version_id=version,
        cache_hit=outcome.cache_hit,
        cost_saved_usd=saved,
        status=outcome.status,
        error_type=outcome.error_type,
        streamed=request.streamed,
        client_disconnected=outcome.client_disconnected,
        latency_ms=(time.perf_counter() - exchange.started) * 1000,
        upstream_latency_ms=request.route_plan.upstream_seconds * 1000,
        ttft_ms=None if first is None else (first - exchange.started) * 1000,
        attempts=request.route_plan.call_count,
        fell_back=request.route_plan.fell_back,
    )


def _content(request: AdmittedRequest, outcome: Outcome) -> tuple[list[str], str]:
    """What the request sent and got, for a tenant that logs content."""
    if request.endpoint == "embeddings":  # the inputs that were embedded; no completion
        return request.inputs(), ""
    completion = outcome.streamed_text or response_text(outcome.response_body)
    return message_texts(request.body), completion
