"""The span of one upstream call, named and attributed after the OpenTelemetry GenAI semantic
conventions (``chat gpt-4o``; ``gen_ai.*``), plus the gateway's own ``llm_gateway.*`` attributes.

Only the OpenTelemetry API is used: with no SDK configured (tracing off) the tracer is a no-op
and no attribute is computed (``is_recording()`` is false)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType

import orjson
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from providers.kinds.registry import KINDS
from providers.types import Completion, DeploymentConfig

_tracer = trace.get_tracer("llm_gateway.routing")

# gen_ai.provider.name values of the semantic conventions, by provider kind (each kind's record
# names its own).
GEN_AI_PROVIDER: Mapping[str, str] = MappingProxyType({k.name: k.gen_ai_provider for k in KINDS})


@contextmanager
def attempt_span(
    deployment: DeploymentConfig, *, operation: str, retry: int, fallback: bool
) -> Iterator[Span]:
    """A CLIENT span around one upstream call, current while it runs (so the HTTP client span
    nests under it). Exceptions are not recorded here: ``record_outcome`` names how it ended.
    With no SDK installed (tracing off) it yields the invalid span at once: the API's no-op
    tracer would still attach a context, some microseconds per route_plan."""
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        yield trace.INVALID_SPAN
        return
    name = f"{operation} {deployment.upstream_model}"
    with _tracer.start_as_current_span(
        name, kind=SpanKind.CLIENT, record_exception=False, set_status_on_exception=False
    ) as span:
        if span.is_recording():
            provider = deployment.provider
            span.set_attributes(
                {
                    "gen_ai.operation.name": operation,
                    "gen_ai.provider.name": GEN_AI_PROVIDER.get(provider.kind, provider.kind),
                    "gen_ai.request.model": deployment.upstream_model,
                    "llm_gateway.provider": provider.name,
                    "llm_gateway.deployment": f"{provider.name}/{deployment.upstream_model}",
                    "llm_gateway.deployment_id": deployment.id,
                    "llm_gateway.retry": retry,
                    "llm_gateway.fallback": fallback,
                }
            )
        yield span


def record_outcome(span: Span, *, status: int, error_type: str, result: object = None) -> None:
    """How the call ended: ``status`` (200, the mapped error status, 0 when no answer came),
    ``error_type``; a ``Completion`` adds the response model and token usage."""
    if not span.is_recording():
        return
    span.set_attribute("llm_gateway.status", status)
    if error_type:
        span.set_attribute("error.type", error_type)
        span.set_status(Status(StatusCode.ERROR))
    if isinstance(result, Completion):
        if result.usage is not None:
            span.set_attribute("gen_ai.usage.input_tokens", result.usage.prompt_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", result.usage.completion_tokens)
        model = _response_model(result.body)
        if model:
            span.set_attribute("gen_ai.response.model", model)


def _response_model(body: bytes) -> str:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    model = parsed.get("model") if isinstance(parsed, dict) else None
    return model if isinstance(model, str) else ""
