"""Traces over OTLP/HTTP to a real receiver, and the JSON access log, from a real gateway.

The canary (the upstream provider key of every e2e gateway, and here also inside prompts) must
show in no log and no exported span: ``tests/conftest.py`` scans them all when the session ends."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import orjson
import pytest

from tests.conftest import CANARY, wait_for
from tests.e2e.conftest import MODEL, PROVIDER, UPSTREAM_MODEL, Proxy, expected_cost, records
from tests.fakes.openai_upstream import ErrorReply, Reply
from tests.fakes.otlp_receiver import OtlpReceiver, ReceivedSpan

SERVER, CLIENT = 2, 3  # opentelemetry.proto.trace.v1.Span.SpanKind


@pytest.fixture
def otlp_receiver(telemetry_outputs) -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver().start()
    telemetry_outputs.payload_sources.append(lambda: receiver.payloads)
    yield receiver
    receiver.stop()


def _trace(receiver: OtlpReceiver, trace_id: str, *, count: int) -> dict[str, list[ReceivedSpan]]:
    def ready() -> list[ReceivedSpan] | None:
        spans = [s for s in receiver.spans if s.trace_id == trace_id]
        return spans if len(spans) >= count else None

    spans = wait_for(ready, timeout=15)
    assert len(spans) == count, [s.name for s in spans]
    by_name: dict[str, list[ReceivedSpan]] = {}
    for each in spans:
        by_name.setdefault(each.name, []).append(each)
    return by_name


def _traceparent() -> tuple[str, str, str]:
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, parent, f"00-{trace_id}-{parent}-01"


def test_one_trace_per_request_from_the_clients_traceparent_to_the_upstream(start_proxy, otlp_receiver):
    proxy: Proxy = start_proxy(
        GATEWAY_RETRIES="1",
        GATEWAY_RETRY_INITIAL_SECONDS="0",
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.endpoint,
        OTEL_BSP_SCHEDULE_DELAY="50",
        OTEL_SERVICE_NAME="gateway-e2e",
    )
    proxy.upstream.enqueue(ErrorReply(503, "busy", type="server_error"), Reply(content="Hi there"))
    trace_id, parent, traceparent = _traceparent()
    response = proxy.http.post(
        "/v1/chat/completions",
        json=proxy.chat_body(f"my key is {CANARY}"),
        headers={"traceparent": traceparent},
    )
    assert response.status_code == 200
    spans = _trace(otlp_receiver, trace_id, count=7)
    assert sorted(spans) == ["POST", "POST /v1/chat/completions", "auth", f"chat {UPSTREAM_MODEL}", "limits"]
    (server,) = spans["POST /v1/chat/completions"]
    assert (server.parent_span_id, server.kind, server.service_name) == (parent, SERVER, "gateway-e2e")
    assert server.attributes["http.request.method"] == "POST"
    assert server.attributes["url.path"] == "/v1/chat/completions"
    assert server.attributes["http.route"] == "/v1/chat/completions"
    assert server.attributes["http.response.status_code"] == 200
    for name in ("auth", "limits"):
        assert [s.parent_span_id for s in spans[name]] == [server.span_id]
    attempts = sorted(spans[f"chat {UPSTREAM_MODEL}"], key=lambda s: s.attributes["llm_gateway.retry"])
    assert [s.parent_span_id for s in attempts] == [server.span_id] * 2
    assert [(s.attributes["llm_gateway.retry"], s.attributes["llm_gateway.status"]) for s in attempts] == [
        (0, 502),
        (1, 200),
    ]
    for each in attempts:
        assert each.kind == CLIENT
        assert each.attributes["gen_ai.operation.name"] == "chat"
        assert each.attributes["gen_ai.provider.name"] == "openai"
        assert each.attributes["gen_ai.request.model"] == UPSTREAM_MODEL
        assert each.attributes["llm_gateway.provider"] == PROVIDER
        assert each.attributes["llm_gateway.fallback"] is False
    assert attempts[1].attributes["gen_ai.usage.input_tokens"] == 19
    assert attempts[1].attributes["gen_ai.usage.output_tokens"] == 3
    http_spans = {s.parent_span_id: s for s in spans["POST"]}
    assert sorted(http_spans) == sorted(a.span_id for a in attempts)
    assert [http_spans[a.span_id].attributes["http.response.status_code"] for a in attempts] == [503, 200]
    assert (
        http_spans[attempts[0].span_id].attributes["url.full"]
        == f"{proxy.upstream.base_url}/chat/completions"
    )
    # The upstream saw our trace: each call's traceparent names its HTTP client span.
    sent = [r.headers["traceparent"].split("-") for r in proxy.upstream.requests]
    assert [(t[1], t[2]) for t in sent] == [(trace_id, http_spans[a.span_id].span_id) for a in attempts]


def test_a_stream_has_its_span_with_tokens_and_status(start_proxy, otlp_receiver):
    proxy = start_proxy(OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.endpoint, OTEL_BSP_SCHEDULE_DELAY="50")
    proxy.upstream.enqueue(Reply(content="one two three"))
    trace_id, _, traceparent = _traceparent()
    with proxy.http.stream(
        "POST",
        "/v1/chat/completions",
        json=proxy.chat_body(stream=True),
        headers={"traceparent": traceparent},
    ) as response:
        body = b"".join(response.iter_bytes())
    assert body.endswith(b"data: [DONE]\n\n")
    spans = _trace(otlp_receiver, trace_id, count=6)
    (server,) = spans["POST /v1/chat/completions"]
    (stream,) = spans["stream"]
    assert stream.parent_span_id == server.span_id
    assert stream.attributes["llm_gateway.status"] == 200
    assert stream.attributes["gen_ai.usage.input_tokens"] == 19
    assert stream.attributes["gen_ai.usage.output_tokens"] == 3
    assert stream.attributes["llm_gateway.stream.chunks"] == 6  # role, 3 words, finish, [DONE]


def _access_lines(proxy: Proxy, count: int) -> list[dict[str, object]]:
    def lines() -> list[dict[str, object]] | None:
        found = []
        for line in proxy.gateway.log().splitlines():
            if line.startswith("{"):
                record = orjson.loads(line)
                if record.get("logger") == "gateway.access":
                    found.append(record)
        return found if len(found) >= count else None

    found = wait_for(lines)
    assert len(found) == count
    return found


def test_one_json_access_line_per_request_without_content(start_proxy):
    proxy = start_proxy(GATEWAY_LOG_FORMAT="json")
    ok = proxy.http.post(
        "/v1/chat/completions",
        json=proxy.chat_body("write to jo@example.com"),
        headers={"x-request-id": "abc-1"},
    )
    refused = proxy.http.post(
        "/v1/chat/completions", json=proxy.chat_body(), headers={"authorization": "Bearer sk-gw-nope"}
    )
    assert (ok.status_code, refused.status_code) == (200, 401)
    served, rejected = _access_lines(proxy, 2)
    assert set(served) == {
        "time", "level", "logger", "message", "request_id", "client_request_id", "endpoint", "tenant",
        "key_prefix", "model", "provider", "deployment", "status", "error_type", "prompt_tokens",
        "completion_tokens", "cost_usd", "latency_ms", "overhead_ms", "upstream_ms", "ttft_ms",
        "attempts", "retries", "fallback", "stream", "cache_hit",
    }  # fmt: skip
    assert {k: served[k] for k in ("client_request_id", "tenant", "model", "provider", "deployment")} == {
        "client_request_id": "abc-1",
        "tenant": "acme",
        "model": MODEL,
        "provider": PROVIDER,
        "deployment": UPSTREAM_MODEL,
    }
    assert served["key_prefix"] == proxy.key.raw[:12]
    assert (served["status"], served["error_type"], served["attempts"], served["stream"]) == (
        200,
        "",
        1,
        False,
    )
    assert (served["prompt_tokens"], served["completion_tokens"]) == (19, 3)
    assert served["cost_usd"] == str(expected_cost(19, 3))
    assert served["latency_ms"] >= served["overhead_ms"] >= 0
    assert (rejected["status"], rejected["error_type"], rejected["tenant"]) == (
        401,
        "invalid_request_error",
        "",
    )
    assert rejected["path"] == "/v1/chat/completions"
    # one reading of the overhead: the refused line's latency is what the header reported
    assert (
        rejected["overhead_ms"]
        == rejected["latency_ms"]
        == round(float(refused.headers["x-gateway-overhead-ms"]), 3)
    )
    log = proxy.gateway.log()
    assert "jo@example.com" not in log
    assert proxy.key.raw not in log
    assert "Hello!" not in log  # the completion text


def test_content_logging_passes_prompt_and_completion_through_the_redactor(start_proxy, configure):
    configure("tenants:\n  - name: acme\n    log_content: true\n")
    proxy = start_proxy(GATEWAY_LOG_FORMAT="json")
    proxy.upstream.enqueue(Reply(content="Call me at 415-555-2671 or ask again"))
    prompt = f"I am jo@example.com, card 4111 1111 1111 1111, key {CANARY}"
    assert proxy.http.post("/v1/chat/completions", json=proxy.chat_body(prompt)).status_code == 200
    (line,) = _access_lines(proxy, 1)
    (redacted_prompt,) = line["prompt"]
    assert redacted_prompt.startswith("I am [EMAIL:")
    assert ", card [CARD:" in redacted_prompt
    assert ", key [OPENAI_KEY:" in redacted_prompt
    assert line["completion"].startswith("Call me at [PHONE:")
    assert line["completion"].endswith("] or ask again")
    # Embeddings log their inputs, redacted too, and no completion.
    configure(
        "models:\n  - name: emb\n    deployments:\n"
        f"      - {{provider: {PROVIDER}, model: emb-up, free: true}}\n"
    )
    wait_for(lambda: proxy.http.get("/v1/models/emb").status_code == 200)
    inputs = ["mail jo@example.com", "ok"]
    assert proxy.http.post("/v1/embeddings", json={"model": "emb", "input": inputs}).status_code == 200

    def embedding_lines() -> list[dict[str, object]] | None:
        lines = [orjson.loads(x) for x in proxy.gateway.log().splitlines() if x.startswith("{")]
        return [x for x in lines if x.get("endpoint") == "embeddings"] or None

    (embedding_line,) = wait_for(embedding_lines)
    assert embedding_line["prompt"][0].startswith("mail [EMAIL:")
    assert embedding_line["prompt"][1] == "ok"
    assert embedding_line["completion"] == ""
    log = proxy.gateway.log()
    for secret in ("jo@example.com", "4111 1111 1111 1111", "415-555-2671", CANARY):
        assert secret not in log


def test_access_log_off_writes_no_access_line(start_proxy):
    proxy = start_proxy(GATEWAY_LOG_FORMAT="json", GATEWAY_ACCESS_LOG="off")
    assert proxy.http.post("/v1/chat/completions", json=proxy.chat_body()).status_code == 200
    assert proxy.http.get("/v1/models").status_code == 200
    records(1)  # the usage record is written after the access line would have been
    proxy.gateway.stop()
    assert '"gateway.access"' not in proxy.gateway.log()


def test_spans_still_queued_at_sigterm_are_exported_before_the_process_exits(start_proxy, otlp_receiver):
    # Batches would leave every 10 minutes: only the shutdown flush can deliver these spans.
    proxy = start_proxy(OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.endpoint, OTEL_BSP_SCHEDULE_DELAY="600000")
    trace_id, _, traceparent = _traceparent()
    response = proxy.http.post(
        "/v1/chat/completions", json=proxy.chat_body(), headers={"traceparent": traceparent}
    )
    assert response.status_code == 200
    assert [s for s in otlp_receiver.spans if s.trace_id == trace_id] == []

    assert proxy.gateway.stop() == 0

    spans = _trace(otlp_receiver, trace_id, count=5)
    assert sorted(spans) == ["POST", "POST /v1/chat/completions", "auth", f"chat {UPSTREAM_MODEL}", "limits"]


def test_a_cache_lookup_has_its_span_naming_the_level_that_answered(start_proxy, otlp_receiver):
    proxy = start_proxy(
        extra_yaml=f"""
models:
  - name: {MODEL}
    cache: {{ttl_seconds: 300, key: full_request}}
    deployments:
      - {{provider: {PROVIDER}, model: {UPSTREAM_MODEL}, free: true}}
""",
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.endpoint,
        OTEL_BSP_SCHEDULE_DELAY="50",
    )
    outcomes = []
    for _ in range(2):
        trace_id, _, traceparent = _traceparent()
        response = proxy.http.post(
            "/v1/chat/completions", json=proxy.chat_body(), headers={"traceparent": traceparent}
        )
        assert response.status_code == 200
        spans = _trace(otlp_receiver, trace_id, count=6 if not outcomes else 4)
        (server,) = spans["POST /v1/chat/completions"]
        (cache,) = spans["cache"]
        assert cache.parent_span_id == server.span_id
        outcomes.append(
            (cache.attributes["llm_gateway.cache.hit"], cache.attributes.get("llm_gateway.cache.level"))
        )
    assert outcomes == [(False, None), (True, "l1")]
    assert len(proxy.upstream.requests) == 1


def test_the_admin_is_traced_by_the_django_instrumentation(start_proxy, otlp_receiver):
    proxy = start_proxy(OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.endpoint, OTEL_BSP_SCHEDULE_DELAY="50")
    trace_id, parent, traceparent = _traceparent()
    page = proxy.http.get("/admin/login/", headers={"traceparent": traceparent})
    assert page.status_code == 200
    spans = _trace(otlp_receiver, trace_id, count=1)
    [(name, [server])] = spans.items()
    assert (name, server.kind, server.parent_span_id) == ("GET admin/login/", SERVER, parent)
    assert server.attributes["http.route"] == "admin/login/"
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["client.address"].startswith("[IP:")  # redacted on export
