"""The OpenAI proxy path, non-streaming: a Daphne gateway in front of the fake OpenAI upstream,
driven with the official SDK and raw httpx. Asserts what the client got, what the upstream
received (and how often) and the usage rows written."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import openai
import pytest
from django.utils import timezone

from accounting.models import UsageRecord
from quotas.services import key_issue, keys_revoke
from tests.conftest import wait_for
from tests.e2e.conftest import (
    MODEL,
    PROVIDER,
    UPSTREAM_MODEL,
    Proxy,
    assert_gateway_headers,
    closed_port,
    error_body,
    expected_cost,
    records,
)
from tests.fakes.openai_upstream import CREATED, Drop, ErrorReply, FakeToolCall, FakeUsage, Reply

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_completion_is_proxied_with_model_swapped_and_fields_forwarded(start_proxy):
    proxy: Proxy = start_proxy()
    proxy.upstream.enqueue(Reply(content="Hi! How can I help?", usage=FakeUsage(19, 6, cached_tokens=4)))
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hello there"},
    ]

    raw = proxy.client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=messages,
        temperature=0.2,
        max_completion_tokens=50,
        extra_body={"my_custom_field": {"nested": [1, "two", None]}, "safety_identifier": "user-7"},
        extra_headers={"x-request-id": "client-trace-42"},
    )
    completion = raw.parse()

    assert raw.status_code == 200
    assert_gateway_headers(raw.http_response, request_id="client-trace-42")
    assert completion.id == "chatcmpl-fake0001"
    assert completion.model == UPSTREAM_MODEL  # the upstream's answer comes back untouched
    assert completion.choices[0].message.content == "Hi! How can I help?"
    assert completion.choices[0].finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (19, 6)
    assert completion.usage.prompt_tokens_details.cached_tokens == 4

    [sent] = proxy.upstream.requests
    assert (sent.method, sent.path) == ("POST", "/v1/chat/completions")
    assert sent.body == {
        "model": UPSTREAM_MODEL,
        "messages": messages,
        "temperature": 0.2,
        "max_completion_tokens": 50,
        "my_custom_field": {"nested": [1, "two", None]},
        "safety_identifier": "user-7",
    }
    assert sent.headers["authorization"] == f"Bearer {proxy.upstream_key}"
    assert sent.headers["content-type"] == "application/json"
    assert proxy.key.raw not in json.dumps(sent.headers)  # the gateway key never goes upstream

    [record] = records(1)
    assert record.request_id.startswith("req_")
    assert record.client_request_id == "client-trace-42"
    assert (record.tenant_name, record.key_id, record.key_prefix) == (
        "acme",
        proxy.key.key_id,
        proxy.key.raw[:12],
    )
    assert (record.model, record.provider, record.upstream_model) == (MODEL, PROVIDER, UPSTREAM_MODEL)
    assert (record.prompt_tokens, record.completion_tokens, record.cached_tokens) == (19, 6, 4)
    assert record.usage_estimated is False
    assert record.cost_usd == expected_cost(19, 6, cached=4)
    assert record.cost_usd == Decimal("0.00000615")  # 15 x 0.15 + 4 x 0.075 + 6 x 0.60 per million
    assert (record.status, record.error_type, record.streamed, record.client_disconnected) == (
        200,
        "",
        False,
        False,
    )
    assert record.ttft_ms is None
    assert record.latency_ms >= record.upstream_latency_ms > 0


def test_request_id_is_echoed_when_well_formed_and_replaced_otherwise(start_proxy):
    proxy: Proxy = start_proxy()

    good = proxy.http.post(
        "/v1/chat/completions", json=proxy.chat_body(), headers={"x-request-id": "abc.DEF_1:2-3"}
    )
    bad = proxy.http.post(
        "/v1/chat/completions", json=proxy.chat_body(), headers={"x-request-id": "not valid!" + "x" * 80}
    )

    assert (good.status_code, bad.status_code) == (200, 200)
    assert_gateway_headers(good, request_id="abc.DEF_1:2-3")
    replaced = assert_gateway_headers(bad)
    # The upstream's body comes back byte for byte.
    upstream_body = {
        "id": "chatcmpl-fake0001",
        "object": "chat.completion",
        "created": CREATED,
        "model": UPSTREAM_MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello!", "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "system_fingerprint": "fp_fake",
        "usage": {
            "prompt_tokens": 19,
            "completion_tokens": 3,
            "total_tokens": 22,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }
    assert good.content == json.dumps(upstream_body).encode()  # aiohttp's json_response encoding
    first, second = records(2)
    assert first.client_request_id == "abc.DEF_1:2-3"
    assert (second.client_request_id, second.request_id) == ("", replaced)
    assert len(proxy.upstream.requests) == 2


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        "strict": True,
    },
}


def test_tool_calls_pass_through_both_ways(start_proxy):
    proxy: Proxy = start_proxy()
    call = FakeToolCall(
        id="call_abc",
        name="get_weather",
        arguments='{"city":"Paris","unit":"c"}',
        fragments=('{"ci', 'ty":"Par', 'is","unit":"c"}'),
    )
    proxy.upstream.enqueue(
        Reply(content=None, tool_calls=(call,), usage=FakeUsage(40, 12)),
        Reply(content=None, tool_calls=(call,), usage=FakeUsage(40, 12)),
    )
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_prev",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_prev", "content": '{"temp_c":21}'},
    ]
    tool_choice = {"type": "function", "function": {"name": "get_weather"}}

    completion = proxy.client.chat.completions.create(
        model=MODEL,
        messages=messages,
        tools=[WEATHER_TOOL],
        tool_choice=tool_choice,
        parallel_tool_calls=False,
    )
    stream = proxy.client.chat.completions.create(
        model=MODEL, messages=messages, tools=[WEATHER_TOOL], tool_choice=tool_choice, stream=True
    )
    deltas = [tc for chunk in stream for choice in chunk.choices for tc in choice.delta.tool_calls or []]

    message = completion.choices[0].message
    assert completion.choices[0].finish_reason == "tool_calls"
    assert message.content is None
    assert [(t.id, t.type, t.function.name, t.function.arguments) for t in message.tool_calls] == [
        ("call_abc", "function", "get_weather", '{"city":"Paris","unit":"c"}')
    ]
    assert [(d.index, d.id, d.function.name, d.function.arguments) for d in deltas] == [
        (0, "call_abc", "get_weather", ""),
        (0, None, None, '{"ci'),
        (0, None, None, 'ty":"Par'),
        (0, None, None, 'is","unit":"c"}'),
    ]

    plain, streamed = proxy.upstream.requests
    assert plain.body == {
        "model": UPSTREAM_MODEL,
        "messages": messages,
        "tools": [WEATHER_TOOL],
        "tool_choice": tool_choice,
        "parallel_tool_calls": False,
    }
    assert streamed.body == {
        "model": UPSTREAM_MODEL,
        "messages": messages,
        "tools": [WEATHER_TOOL],
        "tool_choice": tool_choice,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    first, second = records(2)
    assert (first.prompt_tokens, first.completion_tokens, first.streamed, first.status) == (
        40,
        12,
        False,
        200,
    )
    assert (second.prompt_tokens, second.completion_tokens, second.streamed, second.status) == (
        40,
        12,
        True,
        200,
    )
    assert second.cost_usd == first.cost_usd == expected_cost(40, 12)


def test_client_errors_never_reach_the_upstream(start_proxy, make_key):
    revoked = make_key("acme", name="revoked")
    keys_revoke([revoked.key_id])
    _, expired = key_issue(
        tenant=revoked.tenant, name="expired", expires_at=timezone.now() - dt.timedelta(minutes=1)
    )
    other_only = make_key("acme", name="other", models=["other-*"])
    proxy: Proxy = start_proxy(GATEWAY_MAX_BODY_BYTES="2048")
    http = proxy.http
    url = "/v1/chat/completions"
    body = proxy.chat_body()
    too_large = json.dumps(proxy.chat_body("x" * 3000)).encode()

    def post(**kwargs):
        response = http.post(url, **kwargs)
        assert_gateway_headers(response)
        return response.status_code, response.json()

    invalid = "invalid_request_error"
    no_key = "You didn't provide an API key. Send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'."
    cases = [
        (
            post(
                content=b'{"model": "gpt-4o-mini", "messages": [',
                headers={"content-type": "application/json"},
            ),
            400,
            error_body(
                "The request body is not valid JSON: unexpected end of data: line 1 column 39 (char 38)",
                invalid,
            ),
        ),
        (
            post(json=proxy.chat_body(temperature=5)),
            400,
            error_body(
                "Invalid value for 'temperature': Input should be less than or equal to 2.",
                invalid,
                param="temperature",
            ),
        ),
        (
            post(json={"model": MODEL}),
            400,
            error_body("Missing required parameter: 'messages'.", invalid, param="messages"),
        ),
        (
            post(json=body, headers={"Authorization": ""}),
            401,
            error_body(no_key, invalid, code="invalid_api_key"),
        ),
        (
            post(json=body, headers={"Authorization": "Basic dXNlcjpwYXNz"}),
            401,
            error_body(no_key, invalid, code="invalid_api_key"),
        ),
        (
            post(json=body, headers={"Authorization": "Bearer sk-gw-" + "x" * 43}),
            401,
            error_body("Incorrect API key provided.", invalid, code="invalid_api_key"),
        ),
        (
            post(json=body, headers={"Authorization": f"Bearer {revoked.raw}"}),
            401,
            error_body("This API key has been revoked.", invalid, code="invalid_api_key"),
        ),
        (
            post(json=body, headers={"Authorization": f"Bearer {expired}"}),
            401,
            error_body("This API key has expired.", invalid, code="invalid_api_key"),
        ),
        (
            # a model the key may not use is answered as one that does not exist
            post(json=body, headers={"Authorization": f"Bearer {other_only.raw}"}),
            404,
            error_body(
                "The model 'gpt-4o-mini' does not exist.", invalid, param="model", code="model_not_found"
            ),
        ),
        (
            post(json=proxy.chat_body(model="no-such-model")),
            404,
            error_body(
                "The model 'no-such-model' does not exist.", invalid, param="model", code="model_not_found"
            ),
        ),
        (
            post(content=too_large, headers={"content-type": "application/json"}),
            413,
            error_body(
                f"The request body is {len(too_large)} bytes; the limit is 2048 bytes.",
                invalid,
                code="request_too_large",
            ),
        ),
    ]
    for (status, got), want_status, want in cases:
        assert (status, got) == (want_status, want)

    # The SDK maps the same answers to its exception classes.
    with pytest.raises(openai.BadRequestError):
        proxy.client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], temperature=5
        )
    with pytest.raises(openai.AuthenticationError):
        proxy.client.with_options(api_key=revoked.raw).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}]
        )
    with pytest.raises(openai.NotFoundError):
        proxy.client.with_options(api_key=other_only.raw).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}]
        )
    with pytest.raises(openai.NotFoundError):
        proxy.client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])

    # A good request afterwards is the only one the upstream saw and the only one recorded
    # (usage rows are written in request order, so its row is the fence for the ones before).
    assert http.post(url, json=body).status_code == 200
    [record] = records(1)
    assert record.status == 200
    assert len(proxy.upstream.requests) == 1


def test_upstream_errors_are_mapped_recorded_and_never_leak_secrets(start_proxy, openai_upstream):
    dead = closed_port()
    proxy: Proxy = start_proxy(
        extra_yaml=f"""
providers:
  - name: dead-openai
    kind: openai
    base_url: http://127.0.0.1:{dead}/v1
    api_key_env: GW_E2E_FAKE_OPENAI_KEY
  - name: slow-openai
    kind: openai
    base_url: {openai_upstream.base_url}
    api_key_env: GW_E2E_FAKE_OPENAI_KEY
    timeout_seconds: 0.5
models:
  - name: dead-model
    deployments: [{{provider: dead-openai, model: dead-upstream, input_per_million: "1"}}]
  - name: slow-model
    deployments: [{{provider: slow-openai, model: slow-upstream, input_per_million: "1"}}]
"""
    )
    upstream = proxy.upstream
    secret, base_url = proxy.upstream_key, upstream.base_url
    leaky = f"Upstream {base_url} refused key {secret}"
    upstream.enqueue(
        ErrorReply(
            400,
            "This model's maximum context length is 128000 tokens.",
            param="messages",
            code="context_length_exceeded",
        ),
        ErrorReply(
            429,
            "Rate limit reached for gpt-4o-mini. Please try again in 7s.",
            type="tokens",
            code="rate_limit_exceeded",
            headers={"retry-after": "7", "retry-after-ms": "6500", "x-ratelimit-remaining-tokens": "0"},
        ),
        ErrorReply(
            429,
            "You exceeded your current quota.",
            type="insufficient_quota",
            code="insufficient_quota",
            headers={"retry-after": "20"},
        ),
        ErrorReply(500, "The server had an error while processing your request.", type="server_error"),
        ErrorReply(503, "The engine is currently overloaded.", type="server_error", code="overloaded"),
        ErrorReply(401, f"Incorrect API key provided: {secret}.", code="invalid_api_key"),
        ErrorReply(403, "Project does not have access.", type="permission_error"),
        ErrorReply(400, leaky, param="model"),
        ErrorReply(502, leaky, type="server_error"),
        Drop(),
        Reply(delay=3.0),  # slower than slow-openai's 0.5 s timeout
    )

    def call(model: str = MODEL, *, stream: bool = False):
        response = proxy.http.post("/v1/chat/completions", json=proxy.chat_body(model=model, stream=stream))
        assert_gateway_headers(response)
        assert response.headers["content-type"] == "application/json"
        assert secret not in response.text
        assert base_url not in response.text
        return response

    bad_gateway = "upstream_error"
    results = [
        (
            call(),
            400,
            error_body(
                "This model's maximum context length is 128000 tokens.",
                "invalid_request_error",
                param="messages",
                code="context_length_exceeded",
            ),
        ),
        (
            call(stream=True),
            429,
            error_body(
                "Rate limit reached for gpt-4o-mini. Please try again in 7s.",
                "tokens",
                code="rate_limit_exceeded",
            ),
        ),
        (
            call(),
            429,
            error_body("You exceeded your current quota.", "insufficient_quota", code="insufficient_quota"),
        ),
        (
            call(),
            502,
            error_body(
                "The upstream provider 'fake-openai' failed with HTTP 500: "
                "The server had an error while processing your request.",
                bad_gateway,
                code="upstream_error",
            ),
        ),
        (
            call(stream=True),
            502,
            error_body(
                "The upstream provider 'fake-openai' failed with HTTP 503: "
                "The engine is currently overloaded.",
                bad_gateway,
                code="upstream_error",
            ),
        ),
        (
            call(),
            502,
            error_body(
                "The upstream provider 'fake-openai' rejected the gateway's credentials (HTTP 401); "
                "the gateway administrator must fix the provider configuration.",
                bad_gateway,
                code="upstream_auth_failed",
            ),
        ),
        (
            call(),
            502,
            error_body(
                "The upstream provider 'fake-openai' rejected the gateway's credentials (HTTP 403); "
                "the gateway administrator must fix the provider configuration.",
                bad_gateway,
                code="upstream_auth_failed",
            ),
        ),
        (
            call(),
            400,
            error_body("Upstream [redacted] refused key [redacted]", "invalid_request_error", param="model"),
        ),
        (
            call(),
            502,
            error_body(
                "The upstream provider 'fake-openai' failed with HTTP 502: "
                "Upstream [redacted] refused key [redacted]",
                bad_gateway,
                code="upstream_error",
            ),
        ),
        (
            call(),
            502,
            error_body(
                "The upstream provider 'fake-openai' could not be reached.",
                bad_gateway,
                code="upstream_unreachable",
            ),
        ),
        (
            call("dead-model"),
            502,
            error_body(
                "The upstream provider 'dead-openai' could not be reached.",
                bad_gateway,
                code="upstream_unreachable",
            ),
        ),
        (
            call("slow-model"),
            504,
            error_body(
                "The upstream provider 'slow-openai' did not answer in time.",
                "timeout_error",
                code="upstream_timeout",
            ),
        ),
    ]
    for response, status, body in results:
        assert (response.status_code, response.json()) == (status, body)
    first_429, quota_429 = results[1][0], results[2][0]
    assert (first_429.headers["retry-after"], first_429.headers["retry-after-ms"]) == ("7", "6500")
    assert "x-ratelimit-remaining-tokens" not in first_429.headers
    assert quota_429.headers["retry-after"] == "20"
    assert "retry-after" not in results[0][0].headers

    # The SDK sees the statuses it knows (max_retries=0: one call each).
    upstream.enqueue(
        ErrorReply(
            429, "Slow down.", type="requests", code="rate_limit_exceeded", headers={"retry-after": "1"}
        )
    )
    with pytest.raises(openai.RateLimitError) as rate_limited:
        proxy.client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert rate_limited.value.response.headers["retry-after"] == "1"
    assert rate_limited.value.body == {
        "message": "Slow down.",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }

    # Exactly one upstream request per call (no retries), none for the dead provider; the slow
    # one was abandoned by the gateway when its timeout fired.
    sent = upstream.requests
    assert len(sent) == 12
    assert [r.body["model"] for r in sent] == [UPSTREAM_MODEL] * 10 + ["slow-upstream", UPSTREAM_MODEL]
    assert all(r.headers["authorization"] == f"Bearer {secret}" for r in sent)
    wait_for(lambda: upstream.client_disconnects == 1)

    rows = records(13)
    assert [(r.model, r.status, r.error_type, r.streamed) for r in rows] == [
        (MODEL, 400, "invalid_request_error", False),
        (MODEL, 429, "tokens", True),
        (MODEL, 429, "insufficient_quota", False),
        (MODEL, 502, "upstream_error", False),
        (MODEL, 502, "upstream_error", True),
        (MODEL, 502, "upstream_error", False),
        (MODEL, 502, "upstream_error", False),
        (MODEL, 400, "invalid_request_error", False),
        (MODEL, 502, "upstream_error", False),
        (MODEL, 502, "upstream_error", False),
        ("dead-model", 502, "upstream_error", False),
        ("slow-model", 504, "timeout_error", False),
        (MODEL, 429, "requests", False),
    ]
    assert all((r.prompt_tokens, r.completion_tokens, r.cost_usd) == (0, 0, 0) for r in rows)
    assert rows[-2].upstream_latency_ms >= 500

    log = proxy.gateway.log()
    assert secret not in log
    addresses = (f"127.0.0.1:{upstream.port}", f"127.0.0.1:{dead}")
    leaks = [line for line in log.splitlines() if any(a in line for a in addresses)]
    assert leaks == []


def test_revoked_key_is_refused_by_the_running_gateway_within_a_second(start_proxy, settings, redis_prefix):
    # Publish control-plane changes on the gateway's channel, as a co-deployed admin would.
    settings.GATEWAY_REDIS_PREFIX = redis_prefix
    proxy: Proxy = start_proxy()
    assert proxy.http.post("/v1/chat/completions", json=proxy.chat_body()).status_code == 200

    keys_revoke([proxy.key.key_id])
    wait_for(lambda: proxy.http.get("/v1/models").status_code == 401, timeout=1.0)

    refused = proxy.http.post("/v1/chat/completions", json=proxy.chat_body())
    assert (refused.status_code, refused.json()) == (
        401,
        error_body("This API key has been revoked.", "invalid_request_error", code="invalid_api_key"),
    )
    assert len(proxy.upstream.requests) == 1
    [record] = records(1)
    assert record.status == 200


def test_models_lists_and_retrieves_only_what_the_key_may_use(start_proxy, make_key):
    everything = make_key("acme", name="unrestricted")
    proxy: Proxy = start_proxy(
        key_models=["gpt-4o*"],
        extra_yaml="""
models:
  - name: gpt-4o
    deployments: [{provider: fake-openai, model: gpt-4o-upstream, free: true}]
  - name: other-model
    deployments: [{provider: fake-openai, model: other-upstream, free: true}]
""",
    )

    listed = proxy.client.models.list()
    retrieved = proxy.client.models.retrieve("gpt-4o-mini")
    unrestricted = proxy.client.with_options(api_key=everything.raw).models.list()
    with pytest.raises(openai.NotFoundError) as disallowed:
        proxy.client.models.retrieve("other-model")
    with pytest.raises(openai.NotFoundError) as unknown:
        proxy.client.models.retrieve("no-such-model")

    assert [(m.id, m.object, m.owned_by) for m in listed.data] == [
        ("gpt-4o", "model", PROVIDER),
        ("gpt-4o-mini", "model", PROVIDER),
    ]
    assert all(isinstance(m.created, int) and m.created > 1_700_000_000 for m in listed.data)
    assert (retrieved.id, retrieved.object, retrieved.owned_by) == ("gpt-4o-mini", "model", PROVIDER)
    assert [m.id for m in unrestricted.data] == ["gpt-4o", "gpt-4o-mini", "other-model"]
    assert (
        disallowed.value.body
        == error_body(
            "The model 'other-model' does not exist.",
            "invalid_request_error",
            param="model",
            code="model_not_found",
        )["error"]
    )
    assert (
        unknown.value.body
        == error_body(
            "The model 'no-such-model' does not exist.",
            "invalid_request_error",
            param="model",
            code="model_not_found",
        )["error"]
    )
    raw = proxy.http.get("/v1/models")
    assert_gateway_headers(raw)
    assert raw.json()["object"] == "list"
    # Synthesized from the gateway's catalog: nothing was asked upstream, nothing recorded.
    assert proxy.upstream.requests == []
    assert UsageRecord.objects.count() == 0
