"""``/v1/messages`` end to end through Daphne with the official anthropic SDK, in front of the
strict fake Anthropic upstream: the request goes upstream as the client wrote it (only the
model replaced), the answer and the stream come back as Anthropic sent them, and limits,
records and prices are the gateway's own."""

from __future__ import annotations

import json

import anthropic
import httpx
import pytest

from accounting.models import UsageRecord
from providers.translation.native_body import with_model
from tests.conftest import wait_for
from tests.e2e.conftest import records
from tests.e2e.messages_gateway import (
    ANTHROPIC_ENV,
    ANTHROPIC_KEY,
    PNG,
    WEATHER,
    MessagesGateway,
    anthropic_config,
    cost,
    deployment_yaml,
    event_names,
    prices_yaml,
    stream_event_names,
    tool_turns,
)
from tests.fakes.anthropic_upstream import (
    AnthropicError,
    AnthropicReply,
    FakeAnthropicUpstream,
    ToolUse,
    _message,
    _stream_events,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MODEL = "claude-sonnet"
UPSTREAM_MODEL = "claude-sonnet-4-5-20250929"
KEY = ANTHROPIC_KEY
BETA = "interleaved-thinking-2025-05-14,prompt-caching-scope-2026-01-05"
SYSTEM = [
    {"type": "text", "text": "You are a careful assistant."},
    {"type": "text", "text": "Project notes: " + "notes " * 200, "cache_control": {"type": "ephemeral"}},
]


@pytest.fixture
def upstream():
    fake = FakeAnthropicUpstream(api_key=KEY).start()
    yield fake
    fake.stop()


def anthropic_yaml(upstream: FakeAnthropicUpstream) -> str:
    prices = prices_yaml(provider="anthropic", model=UPSTREAM_MODEL)
    return anthropic_config(upstream.base_url, model=MODEL, upstream_model=UPSTREAM_MODEL, extra=prices)


@pytest.fixture
def gw(upstream, start_messages) -> MessagesGateway:
    return start_messages(anthropic_yaml(upstream), env=ANTHROPIC_ENV)


def assert_passed_through(gw: MessagesGateway, upstream: FakeAnthropicUpstream, *, index: int = -1) -> None:
    """The upstream got the SDK's bytes with only the model replaced, the beta header as sent,
    and the provider's key instead of the gateway's."""
    sent, received = gw.sent.requests[index], upstream.requests[index]
    assert received.raw == with_model(sent.content, UPSTREAM_MODEL)
    assert json.loads(sent.content)["model"] == MODEL
    assert received.headers.get("anthropic-beta") == sent.headers.get("anthropic-beta")
    assert received.headers["x-api-key"] == KEY
    assert gw.key.raw not in json.dumps(received.headers)


def test_create_with_thinking_and_cached_system_passes_through(gw, upstream):
    reply = AnthropicReply(
        text="Paris is the capital of France.",
        thinking="The user asks for a capital; France's is Paris.",
        signature="EqQBCkYIBxgCKkB0c2lnbmF0dXJl",
        input_tokens=12,
        output_tokens=40,
        cache_read=1500,
        cache_creation=300,
    )
    upstream.enqueue(reply)
    raw = gw.client.messages.with_raw_response.create(
        model=MODEL,
        max_tokens=2048,
        system=SYSTEM,
        thinking={"type": "enabled", "budget_tokens": 1024},
        metadata={"user_id": "user-42"},
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        extra_headers={"anthropic-beta": BETA},
    )
    message = raw.parse()
    assert json.loads(raw.http_response.content) == _message(reply, UPSTREAM_MODEL)
    assert [block.type for block in message.content] == ["thinking", "text"]
    assert message.content[0].signature == "EqQBCkYIBxgCKkB0c2lnbmF0dXJl"
    assert (message.usage.cache_read_input_tokens, message.usage.cache_creation_input_tokens) == (1500, 300)
    assert raw.http_response.headers["request-id"] == raw.http_response.headers["x-request-id"]
    assert message._request_id == raw.http_response.headers["request-id"]
    assert_passed_through(gw, upstream)
    assert upstream.requests[0].body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert upstream.requests[0].body["system"][1]["cache_control"] == {"type": "ephemeral"}
    assert upstream.requests[0].headers["anthropic-beta"] == BETA

    [row] = records(1)
    assert (row.endpoint, row.model, row.upstream_model, row.status, row.streamed) == (
        "messages",
        MODEL,
        UPSTREAM_MODEL,
        200,
        False,
    )
    assert (row.prompt_tokens, row.cached_tokens, row.cache_write_tokens, row.completion_tokens) == (
        1812,
        1500,
        300,
        40,
    )
    assert row.cost_usd == cost(uncached=12, output=40, cache_read=1500, cache_write=300)
    assert upstream.violations == []


def test_stream_relays_every_event_as_sent(gw, upstream):
    reply = AnthropicReply(
        text="Let me check.",
        thinking="I need the weather tool.",
        tool_uses=(ToolUse("toolu_01", "get_weather", {"city": "Paris"}),),
        input_tokens=30,
        output_tokens=25,
        cache_read=7,
    )
    upstream.enqueue(reply)
    body = {
        "model": MODEL,
        "max_tokens": 4096,
        "stream": True,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "tools": [WEATHER],
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
    }
    with gw.http.stream(
        "POST", "/v1/messages?beta=true", json=body, headers={"anthropic-beta": BETA}
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        streamed = response.read()
    assert streamed == b"".join(_stream_events(reply, UPSTREAM_MODEL))
    # thinking (thinking_delta, signature_delta), text (three words), tool use (two fragments)
    assert stream_event_names(streamed) == event_names(2, 3, 2)
    assert upstream.requests[0].headers["anthropic-beta"] == BETA

    # The SDK's stream helper assembles the same message from the relayed events.
    upstream.enqueue(reply)
    with gw.client.messages.stream(
        model=MODEL,
        max_tokens=4096,
        thinking={"type": "enabled", "budget_tokens": 2048},
        tools=[WEATHER],
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        extra_headers={"anthropic-beta": BETA},
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert {"thinking", "signature", "text", "input_json"} <= set(kinds)
    assert [block.type for block in final.content] == ["thinking", "text", "tool_use"]
    assert final.content[0].signature == "sig-fake-0001"
    assert final.content[2].input == {"city": "Paris"}
    assert (final.stop_reason, final.usage.output_tokens, final.usage.cache_read_input_tokens) == (
        "tool_use",
        25,
        7,
    )
    assert_passed_through(gw, upstream)

    rows = records(2)
    assert [
        (r.endpoint, r.streamed, r.prompt_tokens, r.completion_tokens, r.cached_tokens) for r in rows
    ] == [
        ("messages", True, 37, 25, 7),
        ("messages", True, 37, 25, 7),
    ]
    assert rows[0].cost_usd == cost(uncached=30, output=25, cache_read=7)


def test_tool_round_trip_with_image_result_and_thinking_echoed(gw, upstream):
    upstream.enqueue(
        AnthropicReply(
            text="",
            thinking="Use the tool.",
            tool_uses=(ToolUse("toolu_02", "get_weather", {"city": "Oslo"}),),
        )
    )
    first = gw.client.messages.create(
        model=MODEL,
        max_tokens=3000,
        thinking={"type": "enabled", "budget_tokens": 1024},
        tools=[WEATHER],
        tool_choice={"type": "auto"},
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
    )
    assert first.stop_reason == "tool_use"
    upstream.enqueue(AnthropicReply(text="It is 3°C in Oslo."))
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    result = {"type": "text", "text": '{"temp_c": 3}'}
    history = tool_turns(
        "Weather in Oslo?",
        first,
        {"type": "tool_result", "tool_use_id": "toolu_02", "content": [result, image]},
    )
    final = gw.client.messages.create(
        model=MODEL,
        max_tokens=3000,
        thinking={"type": "enabled", "budget_tokens": 1024},
        tools=[WEATHER],
        messages=history,
    )
    assert final.content[0].text == "It is 3°C in Oslo."
    assert upstream.requests[1].body["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": "Use the tool.",
        "signature": "sig-fake-0001",
    }
    assert_passed_through(gw, upstream)
    assert upstream.violations == []


def test_count_tokens_asks_anthropic(gw, upstream):
    upstream.token_count = 1234
    counted = gw.client.messages.count_tokens(
        model=MODEL,
        system=SYSTEM,
        tools=[WEATHER],
        messages=[{"role": "user", "content": "How many tokens is this?"}],
        extra_headers={"anthropic-beta": BETA},
    )
    assert counted.input_tokens == 1234
    [received] = upstream.requests
    assert received.path == "/v1/messages/count_tokens"
    assert received.raw == with_model(gw.sent.last.content, UPSTREAM_MODEL)
    assert received.headers["anthropic-beta"] == BETA
    assert UsageRecord.objects.count() == 0  # nothing generated, nothing recorded


def test_models_in_anthropic_shape(gw, configure):
    configure(
        f"""
models:
  - name: claude-haiku
    deployments:
{deployment_yaml(provider="anthropic", model="claude-haiku-4-5")}"""
    )
    anthropic_version = {"anthropic-version": "2023-06-01"}
    wait_for(lambda: len(gw.http.get("/v1/models", headers=anthropic_version).json()["data"]) == 2)
    models = list(gw.client.models.list(limit=1))  # one per page: the SDK follows has_more
    assert [m.id for m in models] == ["claude-haiku", MODEL]
    assert {(m.type, m.display_name == m.id) for m in models} == {("model", True)}
    page = gw.http.get("/v1/models", headers=anthropic_version).json()
    assert (page["has_more"], page["first_id"], page["last_id"]) == (False, "claude-haiku", MODEL)
    assert gw.client.models.retrieve(MODEL).id == MODEL
    with pytest.raises(anthropic.NotFoundError) as missing:
        gw.client.models.retrieve("no-such-model")
    assert missing.value.body["error"]["type"] == "not_found_error"
    # Without anthropic-version the same endpoint answers in OpenAI's shape.
    assert gw.http.get("/v1/models").json()["object"] == "list"


def test_error_classes(gw, upstream, start_messages):
    def ask(client: anthropic.Anthropic = gw.client, model: str = MODEL, **extra: object) -> object:
        messages: list[anthropic.types.MessageParam] = [{"role": "user", "content": "Hi"}]
        return client.messages.create(
            model=model, max_tokens=100, messages=messages, extra_body=extra or None
        )

    with pytest.raises(anthropic.AuthenticationError) as unauthenticated:
        ask(gw.sdk(api_key="sk-gw-not-a-key"))
    assert unauthenticated.value.body["type"] == "error"
    assert unauthenticated.value.body["error"]["type"] == "authentication_error"
    assert unauthenticated.value.response.headers["request-id"].startswith("req_")

    with pytest.raises(anthropic.BadRequestError) as invalid:
        ask(temperature=1.5)
    assert invalid.value.body["error"]["type"] == "invalid_request_error"
    assert "temperature" in invalid.value.body["error"]["message"]

    with pytest.raises(anthropic.NotFoundError) as unknown:
        ask(model="claude-unknown")
    assert unknown.value.body["error"]["type"] == "not_found_error"

    upstream.enqueue(AnthropicError(429, "rate_limit_error", "Slow down", headers={"retry-after": "7"}))
    with pytest.raises(anthropic.RateLimitError) as limited:
        ask()
    assert limited.value.response.headers["retry-after"] == "7"
    assert limited.value.body["error"] == {"type": "rate_limit_error", "message": "Slow down"}

    upstream.enqueue(AnthropicError(529, "overloaded_error", "Overloaded"))
    with pytest.raises(anthropic.OverloadedError) as overloaded:
        ask()
    assert overloaded.value.body["error"]["type"] == "overloaded_error"

    upstream.enqueue(AnthropicError(500, "api_error", "Internal server error"))
    with pytest.raises(anthropic.InternalServerError) as failed:
        ask()
    assert (failed.value.status_code, failed.value.body["error"]["type"]) == (500, "api_error")

    upstream.enqueue(AnthropicError(400, "invalid_request_error", "prompt is too long: 210000 tokens"))
    with pytest.raises(anthropic.BadRequestError) as refused:
        ask()
    assert refused.value.body["error"]["message"] == "prompt is too long: 210000 tokens"

    upstream.api_key = "sk-ant-rotated"  # the gateway's provider key is now wrong
    with pytest.raises(anthropic.InternalServerError) as misconfigured:
        ask()
    assert misconfigured.value.body["error"]["type"] == "api_error"
    assert KEY not in json.dumps(misconfigured.value.body)
    upstream.api_key = KEY

    upstream.enqueue(AnthropicReply(text="one two three four five", fail_after=2, error_message="Overloaded"))
    stream = gw.client.messages.stream(
        model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "Hi"}]
    )
    with pytest.raises(anthropic.APIStatusError) as mid_stream, stream as events:
        list(events)
    assert mid_stream.value.body["type"] == "error"
    assert mid_stream.value.body["error"]["type"] == "overloaded_error"
    assert "Overloaded" in mid_stream.value.body["error"]["message"]

    rows = records(6)  # refused before admission (key, body, model): no record
    assert [(r.status, r.error_type) for r in rows] == [
        (429, "rate_limit_error"),
        (503, "upstream_error"),
        (502, "upstream_error"),
        (400, "invalid_request_error"),
        (502, "upstream_error"),
        (502, "upstream_error"),
    ]
    assert {r.endpoint for r in rows} == {"messages"}


def test_body_over_the_limit_is_request_too_large(upstream, start_messages):
    small = start_messages(anthropic_yaml(upstream), env={**ANTHROPIC_ENV, "GATEWAY_MAX_BODY_BYTES": "2048"})
    with pytest.raises(anthropic.RequestTooLargeError) as too_large:
        small.client.messages.create(
            model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "x" * 5000}]
        )
    assert too_large.value.body["error"]["type"] == "request_too_large"
    assert upstream.requests == []


def test_an_upstream_too_slow_is_a_gateway_timeout(upstream, start_messages):
    config = anthropic_config(
        upstream.base_url, model=MODEL, upstream_model=UPSTREAM_MODEL, timeout_seconds=0.5
    )
    slow = start_messages(config, env=ANTHROPIC_ENV)
    upstream.enqueue(AnthropicReply(delay=2.0))
    with pytest.raises(anthropic.GatewayTimeoutError) as timed_out:
        slow.client.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "Hi"}])
    assert timed_out.value.body["error"]["type"] == "timeout_error"
    [row] = records(1)
    assert (row.endpoint, row.status, row.error_type) == ("messages", 504, "timeout_error")


def test_claude_code_auth_token_and_x_api_key(gw, upstream):
    """Claude Code's ANTHROPIC_AUTH_TOKEN arrives as a bearer token; an API key as x-api-key."""
    by_token = gw.sdk(auth_token=gw.key.raw)
    assert (
        by_token.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "Hi"}])
        .content[0]
        .text
        == "Hello from Claude!"
    )
    response = httpx.post(
        f"{gw.gateway.base_url}/v1/messages",
        headers={"x-api-key": gw.key.raw, "anthropic-version": "2023-06-01"},
        json={"model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": "Hi"}]},
        timeout=30,
    )
    assert response.status_code == 200
    assert response.json()["content"] == [{"type": "text", "text": "Hello from Claude!"}]
    assert len(upstream.requests) == 2
