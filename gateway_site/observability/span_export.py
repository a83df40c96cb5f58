"""The span exporter wrapper of tracing (``gateway_site.observability.tracing``), imported only when tracing
is on (it needs the OpenTelemetry SDK): every attribute of every exported span passes the PII
redactor, and credential-like query parameters in URLs are blanked."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.util.types import Attributes, AttributeValue

from gateway_site.observability.redaction import Redactor

URL_ATTRIBUTES = frozenset({"url.full", "http.url", "url.query", "http.target"})
# Where the gateway connects to (upstream hosts): IP addresses there are infrastructure, not
# personal data, and kept; the other patterns still apply.
PEER_ATTRIBUTES = frozenset({"server.address", "net.peer.name", "network.peer.address", *URL_ATTRIBUTES})
SECRET_QUERY_PARAMETERS = frozenset(
    {"key", "api_key", "apikey", "api-key", "access_token", "token", "sig", "signature", "code"}
)


class RedactingSpanExporter(SpanExporter):
    """Passes each span to ``inner`` with its attributes (and its events') redacted, and the
    secret query parameters of URL attributes blanked. Runs in the batch processor's thread."""

    def __init__(self, inner: SpanExporter, *, redactor: Redactor) -> None:
        self._inner = inner
        self._redactor = redactor
        self._peer_redactor = redactor.without("IP")

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._inner.export([self._redacted(each) for each in spans])

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)

    def _redacted(self, original: ReadableSpan) -> ReadableSpan:
        return ReadableSpan(
            name=self._redactor.redact(original.name),
            context=original.context,
            parent=original.parent,
            resource=original.resource,
            attributes=self.attributes(original.attributes),
            events=[
                Event(e.name, attributes=self.attributes(e.attributes), timestamp=e.timestamp)
                for e in original.events
            ],
            links=original.links,
            kind=original.kind,
            status=original.status,
            start_time=original.start_time,
            end_time=original.end_time,
            instrumentation_scope=original.instrumentation_scope,
        )

    def attributes(self, attributes: Attributes) -> dict[str, AttributeValue]:
        cleaned: dict[str, AttributeValue] = {}
        for name, value in (attributes or {}).items():
            if name in PEER_ATTRIBUTES and isinstance(value, str):
                value = self._peer_redactor.redact(scrub_url(value))
            elif isinstance(value, str):
                value = self._redactor.redact(value)
            elif isinstance(value, Sequence) and not isinstance(value, bytes):
                value = tuple(self._redactor.redact(v) if isinstance(v, str) else v for v in value)
            cleaned[name] = value
        return cleaned


def scrub_url(value: str) -> str:
    """``value`` with the values of credential-like query parameters (``?key=``) replaced."""
    if "?" not in value and "=" not in value:
        return value
    parts = urlsplit(value) if "://" in value or value.startswith("/") else None
    query = parts.query if parts is not None else value.lstrip("?")
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(k.lower() in SECRET_QUERY_PARAMETERS for k, _ in pairs):
        return value
    scrubbed = urlencode([(k, "REDACTED" if k.lower() in SECRET_QUERY_PARAMETERS else v) for k, v in pairs])
    return urlunsplit(parts._replace(query=scrubbed)) if parts is not None else scrubbed
