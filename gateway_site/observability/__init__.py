"""What an operator sees of the gateway: Prometheus metrics (``metrics``, rendered by
``exposition``), OpenTelemetry traces (``tracing``, ``span_export``), the JSON logs and the
access line (``logconfig``, ``access_log``), request ids and the PII redactor (``redaction``).
Imports no other part of ``gateway_site``."""
