"""OpenTelemetry tracing (docs/operations.md, "Tracing"). Off unless an OTLP endpoint is configured
(``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) and
``OTEL_SDK_DISABLED`` is not true; then spans go over OTLP/HTTP through a batch processor, every
attribute passing the PII redactor on its way out (``RedactingSpanExporter``).

One trace per API request: the server span (``server_span``, made here because ``/v1/*`` skips
Django's middleware and with it the Django instrumentation, which traces the admin and reports
API), its children ``auth``, ``limits``, ``cache``, one span per upstream route_plan
(``routing.telemetry``) with the HTTP client span under it, and ``stream``. A client's W3C
``traceparent`` / ``tracestate`` continues its trace; the upstream request carries ours."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import AbstractContextManager, aclosing, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from gateway_site.observability.access_log import site_redactor

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

TRACER_NAME = "llm_gateway"
TRACED_PREFIX = "/v1/"
DEFAULT_SERVICE_NAME = "llm-gateway"
_NULL: AbstractContextManager[None] = contextlib.nullcontext()
_tracer = trace.get_tracer(TRACER_NAME)


def configure_tracing(*, exporter: SpanExporter | None = None) -> TracerProvider | None:
    """Install the SDK once per process when tracing is on (or ``exporter`` is given, in tests),
    and instrument Django's standard handler. Call before the handlers are built."""
    if not settings.GATEWAY_TRACING and exporter is None:
        return None
    # The SDK, the exporter and the Django instrumentation are imported only when tracing is on.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from gateway_site.observability.span_export import RedactingSpanExporter

    # The stable HTTP semantic conventions (url.full, http.response.status_code) for the Django
    # and httpx instrumentations, unless the operator chose otherwise.
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")

    resource = Resource.create()
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": DEFAULT_SERVICE_NAME}))
    provider = TracerProvider(resource=resource)  # OTEL_TRACES_SAMPLER and friends apply
    inner = exporter or OTLPSpanExporter()
    provider.add_span_processor(BatchSpanProcessor(RedactingSpanExporter(inner, redactor=site_redactor())))
    trace.set_tracer_provider(provider)  # flushed and shut down at exit (atexit, also on SIGTERM)
    DjangoInstrumentor().instrument(tracer_provider=provider)
    return provider


def span(name: str) -> AbstractContextManager[Span | None]:
    """A child span of the current one, current while the block runs; nothing when off."""
    return _tracer.start_as_current_span(name) if settings.GATEWAY_TRACING else _NULL


def mark_cache(current: Span | None, *, level: str | None) -> None:
    """``level``: the cache level that answered (``l1``, ``l2``), None on a miss."""
    if current is not None:
        current.set_attribute("llm_gateway.cache.hit", level is not None)
        if level is not None:
            current.set_attribute("llm_gateway.cache.level", level)


def server_span(scope: Mapping[str, Any]) -> AbstractContextManager[Span | None]:
    """The SERVER span of an API request (HTTP semantic conventions), continuing the client's
    trace when it sent a W3C ``traceparent``. Named ``{method} {route}`` once routed. Nothing
    (a shared null context, no generator per request) when off or outside ``/v1/``."""
    if not settings.GATEWAY_TRACING or not scope["path"].startswith(TRACED_PREFIX):
        return _NULL
    return _server_span(scope)


@contextmanager
def _server_span(scope: Mapping[str, Any]) -> Iterator[Span]:
    carrier = {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in scope.get("headers", ())
        if name in (b"traceparent", b"tracestate")
    }
    method = scope.get("method", "GET")
    attributes: dict[str, AttributeValue] = {
        "http.request.method": method,
        "url.path": scope["path"],
        "url.scheme": scope.get("scheme", "http"),
    }
    client = scope.get("client")
    if client:
        attributes["client.address"] = client[0]
    context = propagate.extract(carrier)
    with _tracer.start_as_current_span(
        method, context=context, kind=SpanKind.SERVER, attributes=attributes
    ) as current:
        yield current


def record_response(request: HttpRequest, response: HttpResponseBase) -> None:
    """Name the current server span after the matched route and note the response status."""
    if not settings.GATEWAY_TRACING:
        return
    current = trace.get_current_span()
    if not current.is_recording():
        return
    match = request.resolver_match
    if match is not None and match.route:
        route = "/" + match.route.lstrip("^").rstrip("$")
        current.set_attribute("http.route", route)
        current.update_name(f"{request.method} {route}")
    current.set_attribute("http.response.status_code", response.status_code)
    if response.status_code >= 500:
        current.set_status(Status(StatusCode.ERROR))
        current.set_attribute("error.type", str(response.status_code))


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """How a relayed stream ended, for its span."""

    status: int
    error_type: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


def traced_stream(chunks: AsyncIterator[bytes], ending: Callable[[], StreamEnd]) -> AsyncIterator[bytes]:
    """``chunks`` inside a ``stream`` span from the first byte to the end, which records how it
    ended (``ending``, read at the end). Returns ``chunks`` itself when tracing is off."""
    if not settings.GATEWAY_TRACING:
        return chunks
    return _traced_stream(chunks, ending)


async def _traced_stream(
    chunks: AsyncIterator[bytes], ending: Callable[[], StreamEnd]
) -> AsyncIterator[bytes]:
    # Started, not made current: a context attached in a generator cannot be detached safely.
    current = _tracer.start_span("stream")
    chunk_count = 0
    try:
        async with aclosing(chunks) as inner:  # type: ignore[type-var]
            async for chunk in inner:
                chunk_count += 1
                yield chunk
    finally:
        end = ending()
        current.set_attribute("llm_gateway.stream.chunks", chunk_count)
        current.set_attribute("llm_gateway.status", end.status)
        if end.prompt_tokens is not None and end.completion_tokens is not None:
            current.set_attribute("gen_ai.usage.input_tokens", end.prompt_tokens)
            current.set_attribute("gen_ai.usage.output_tokens", end.completion_tokens)
        if end.error_type:
            current.set_attribute("error.type", end.error_type)
            current.set_status(Status(StatusCode.ERROR))
        current.end()
