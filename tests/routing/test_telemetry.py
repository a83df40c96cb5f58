"""Each upstream call is one span named and attributed after the GenAI semantic conventions,
with the traced HTTP client's span under it and the trace carried upstream in ``traceparent``."""

from __future__ import annotations

from opentelemetry.trace import SpanKind, StatusCode

from providers.http import create_http_client
from providers.types import DeploymentConfig, ModelRoute, ProviderConfig
from routing.retry import RetryPolicy
from routing.router import Router
from tests.fakes.openai_upstream import ErrorReply, FakeOpenAIUpstream, Reply


async def _no_sleep(_seconds: float) -> None:
    return None


async def test_a_retried_call_gives_two_attempt_spans_each_with_its_http_client_span(memory_spans):
    upstream = FakeOpenAIUpstream().start()
    try:
        provider = ProviderConfig(name="acme-openai", kind="openai", base_url=upstream.base_url, api_key="k")
        deployment = DeploymentConfig(id=7, provider=provider, upstream_model="gpt-up")
        route = ModelRoute(name="m", created=0, owned_by="acme", deployments=(deployment,))
        client = create_http_client(max_connections=2, timeout_seconds=5, connect_timeout=1, traced=True)
        router = Router(client=client, default_timeout=5, retry=RetryPolicy(retries=1), sleep=_no_sleep)
        upstream.enqueue(
            ErrorReply(503, "busy", type="server_error"), Reply(content="Hi there", model="gpt-up-0613")
        )
        route_plan = router.plan(route)
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        await router.complete(route_plan, body, request_id="req_1")
        await router.aclose()
    finally:
        upstream.stop()
    spans = memory_spans.get_finished_spans()
    attempts = [s for s in spans if s.name == "chat gpt-up"]
    assert len(attempts) == 2
    base = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-up",
        "llm_gateway.provider": "acme-openai",
        "llm_gateway.deployment": "acme-openai/gpt-up",
        "llm_gateway.deployment_id": 7,
        "llm_gateway.fallback": False,
    }
    assert dict(attempts[0].attributes) == {
        **base,
        "llm_gateway.retry": 0,
        "llm_gateway.status": 502,
        "error.type": "upstream_error",
    }
    assert attempts[0].status.status_code is StatusCode.ERROR
    assert dict(attempts[1].attributes) == {
        **base,
        "llm_gateway.retry": 1,
        "llm_gateway.status": 200,
        "gen_ai.response.model": "gpt-up-0613",
        "gen_ai.usage.input_tokens": 19,
        "gen_ai.usage.output_tokens": 3,
    }
    assert all(s.kind is SpanKind.CLIENT for s in attempts)
    http_spans = [s for s in spans if s.name == "POST"]
    assert len(http_spans) == 2
    for http_span, attempt_span in zip(http_spans, attempts, strict=True):
        assert http_span.parent.span_id == attempt_span.context.span_id
        assert http_span.kind is SpanKind.CLIENT
    # This process did not opt in to the stable HTTP conventions (the gateway does, see tracing.py).
    assert [s.attributes["http.status_code"] for s in http_spans] == [503, 200]
    assert [s.attributes["http.url"] for s in http_spans] == [f"{upstream.base_url}/chat/completions"] * 2
    # Both calls carried the trace upstream, each with its own HTTP span as the parent.
    sent = [r.headers["traceparent"] for r in upstream.requests]
    assert sent == [
        f"00-{s.context.trace_id:032x}-{s.context.span_id:016x}-{s.context.trace_flags:02x}"
        for s in http_spans
    ]


async def test_an_untraced_client_sends_no_traceparent():
    """The HTTP client is traced only when tracing is on (``create_http_client(traced=True)``)."""
    upstream = FakeOpenAIUpstream().start()
    try:
        provider = ProviderConfig(name="p", kind="openai", base_url=upstream.base_url, api_key="k")
        deployment = DeploymentConfig(id=1, provider=provider, upstream_model="gpt-up")
        route = ModelRoute(name="m", created=0, owned_by="p", deployments=(deployment,))
        router = Router(
            client=create_http_client(max_connections=2, timeout_seconds=5, connect_timeout=1),
            default_timeout=5,
        )
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        completion = await router.complete(router.plan(route), body, request_id="req_1")
        await router.aclose()
    finally:
        upstream.stop()
    assert completion.usage is not None
    assert "traceparent" not in upstream.requests[0].headers
