"""The gateway's spans in process (SDK in-memory exporter): the server span continues a client's
W3C trace, children nest under it, nothing is made when tracing is off, and the exporter
wrapper redacts every attribute on the way out."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from gateway_site.env import tracing_enabled
from gateway_site.observability.redaction import Redactor
from gateway_site.observability.span_export import RedactingSpanExporter, scrub_url
from gateway_site.observability.tracing import server_span, span

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


def _scope(path: str = "/v1/chat/completions", **headers: str) -> dict[str, object]:
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "scheme": "http",
        "client": ("127.0.0.1", 5000),
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
    }


def test_the_server_span_continues_the_clients_trace_and_children_nest_under_it(memory_spans):
    scope = _scope(traceparent=f"00-{TRACE_ID}-{PARENT_ID}-01")
    with server_span(scope) as server, span("auth"), span("limits"):
        assert server is not None
    finished = {s.name: s for s in memory_spans.get_finished_spans()}
    assert sorted(finished) == ["POST", "auth", "limits"]
    root = finished["POST"]
    assert f"{root.context.trace_id:032x}" == TRACE_ID
    assert f"{root.parent.span_id:016x}" == PARENT_ID
    assert root.parent.is_remote
    assert root.kind is SpanKind.SERVER
    assert dict(root.attributes) == {
        "http.request.method": "POST",
        "url.path": "/v1/chat/completions",
        "url.scheme": "http",
        "client.address": "127.0.0.1",
    }
    assert finished["auth"].parent.span_id == root.context.span_id
    assert finished["limits"].parent.span_id == finished["auth"].context.span_id


def test_without_traceparent_the_server_span_starts_a_new_trace(memory_spans):
    with server_span(_scope()):
        pass
    (root,) = memory_spans.get_finished_spans()
    assert root.parent is None


def test_probes_and_the_admin_get_no_server_span_of_ours(memory_spans):
    with server_span(_scope("/live")) as live:
        assert live is None
    assert memory_spans.get_finished_spans() == ()


def test_tracing_off_makes_no_span(memory_spans, settings):
    settings.GATEWAY_TRACING = False
    with server_span(_scope()) as server, span("auth") as auth:
        assert server is None
        assert auth is None
    assert memory_spans.get_finished_spans() == ()


def _span(attributes: dict[str, object]) -> ReadableSpan:
    return ReadableSpan(name="POST", attributes=attributes)


def test_the_exporter_wrapper_redacts_attributes_and_secret_query_parameters():
    redactor = Redactor(b"k")
    inner = InMemorySpanExporter()
    exporter = RedactingSpanExporter(inner, redactor=redactor)
    result = exporter.export(
        [
            _span(
                {
                    "url.full": "https://generativelanguage.googleapis.com/v1beta/models/g:generate?key=AIzaSecret&alt=sse",
                    "note": "mail jo@ex.io with Bearer abcdefgh12345678",
                    "tags": ["ok", "sk-proj-Abc123_def456-ghi789JKL0"],
                    "count": 3,
                    "server.address": "10.1.2.3",
                    "client.address": "10.1.2.3",
                }
            )
        ]
    )
    assert result is SpanExportResult.SUCCESS
    (out,) = inner.get_finished_spans()
    assert dict(out.attributes) == {
        "url.full": "https://generativelanguage.googleapis.com/v1beta/models/g:generate?key=REDACTED&alt=sse",
        "note": f"mail {redactor.placeholder('EMAIL', 'jo@ex.io')} with "
        f"Bearer {redactor.placeholder('BEARER', 'abcdefgh12345678')}",
        "tags": ("ok", redactor.placeholder("OPENAI_KEY", "sk-proj-Abc123_def456-ghi789JKL0")),
        "count": 3,
        "server.address": "10.1.2.3",  # where the gateway connects: infrastructure, kept
        "client.address": redactor.placeholder("IP", "10.1.2.3"),
    }


def test_scrub_url_leaves_urls_without_secret_parameters_alone():
    assert scrub_url("http://h/v1/chat/completions") == "http://h/v1/chat/completions"
    assert scrub_url("http://h/x?api-version=2024-10-21") == "http://h/x?api-version=2024-10-21"
    assert scrub_url("http://h/x?api_key=s3cr3t&b=1") == "http://h/x?api_key=REDACTED&b=1"
    assert scrub_url("/x?token=abc") == "/x?token=REDACTED"


@pytest.mark.parametrize(
    ("environ", "enabled"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "otlp"}, True),
    ],
)
def test_tracing_follows_opentelemetrys_environment(monkeypatch, environ, enabled):
    for name in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_SDK_DISABLED",
        "OTEL_TRACES_EXPORTER",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert tracing_enabled() is enabled


def test_an_exporter_the_gateway_does_not_ship_is_refused_loudly(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    with pytest.raises(ImproperlyConfigured, match="OTEL_TRACES_EXPORTER"):
        tracing_enabled()
