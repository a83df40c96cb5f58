"""End to end through Daphne with the official openai SDK against the fake Anthropic upstream:
chat, streaming, a tool-call round trip, image input, and each error class."""

from __future__ import annotations

import openai
import pytest

from accounting.models import UsageRecord
from tests.e2e.conftest import records
from tests.e2e.vendor_gateway import assert_credentials_rejected, cost, streamed_text, streamed_tool_calls
from tests.fakes.anthropic_upstream import AnthropicError, AnthropicReply, FakeAnthropicUpstream, ToolUse

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MODEL = "claude-sonnet"
UPSTREAM_MODEL = "claude-sonnet-4-20250514"
KEY = "sk-ant-e2e-SECRET-0123456789"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture
def upstream():
    fake = FakeAnthropicUpstream(api_key=KEY).start()
    yield fake
    fake.stop()


@pytest.fixture
def client(upstream, start_vendor):
    return start_vendor(
        provider_yaml=f"""  - name: vendor
    kind: anthropic
    base_url: {upstream.base_url}
    api_key_env: GW_E2E_ANTHROPIC_KEY""",
        model=MODEL,
        upstream_model=UPSTREAM_MODEL,
        env={"GW_E2E_ANTHROPIC_KEY": KEY},
    )


def test_chat_stream_tool_round_trip_and_image(client: openai.OpenAI, upstream: FakeAnthropicUpstream):
    upstream.enqueue(AnthropicReply(text="Hi there!", input_tokens=30, output_tokens=4, cache_read=10))
    reply = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}],
        temperature=0.5,
        max_tokens=100,
    )
    assert reply.id == "msg_01FakeAnthropic"
    assert reply.model == UPSTREAM_MODEL
    assert reply.choices[0].message.content == "Hi there!"
    assert reply.choices[0].finish_reason == "stop"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.total_tokens) == (40, 4, 44)
    assert reply.usage.prompt_tokens_details.cached_tokens == 10
    first = upstream.requests[0]
    assert first.headers["x-api-key"] == KEY
    assert first.headers["anthropic-version"] == "2023-06-01"
    assert first.body == {
        "model": UPSTREAM_MODEL,
        "max_tokens": 100,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}],
        "system": [{"type": "text", "text": "Be brief."}],
        "temperature": 0.5,
    }

    # Streaming, with usage asked for: content deltas, finish chunk, usage chunk, [DONE].
    upstream.enqueue(AnthropicReply(text="One two three", input_tokens=12, output_tokens=3))
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Count"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert streamed_text(chunks) == "One two three"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (12, 3)
    assert {c.id for c in chunks} == {"msg_01FakeAnthropic"}
    assert upstream.requests[1].body["stream"] is True

    # A tool-call round trip, streamed: the arguments arrive as deltas; the result goes back.
    upstream.enqueue(
        AnthropicReply(text="", tool_uses=(ToolUse("toolu_01A", "get_weather", {"city": "Paris"}),))
    )
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER_TOOL],
        tool_choice="required",
        stream=True,
    )
    chunks = list(stream)
    calls = streamed_tool_calls(chunks)
    assert (calls[0].id, calls[0].function.name) == ("toolu_01A", "get_weather")
    assert "".join(t.function.arguments or "" for t in calls) == '{"city": "Paris"}'
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert upstream.requests[2].body["tool_choice"] == {"type": "any"}

    upstream.enqueue(AnthropicReply(text="It is 21°C in Paris.", output_tokens=9))
    final = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "toolu_01A",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_01A", "content": '{"temp_c": 21}'},
        ],
        tools=[WEATHER_TOOL],
    )
    assert final.choices[0].message.content == "It is 21°C in Paris."
    assert upstream.requests[3].body["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris"}}
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_01A", "content": '{"temp_c": 21}'}],
        },
    ]

    # Images by data URL and by http URL.
    client.chat.completions.create(
        model=MODEL,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare"},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/b.png"}},
                ],
            }
        ],
    )
    assert upstream.requests[4].body["messages"][0]["content"][1:] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/b.png"}},
    ]
    assert upstream.violations == []

    rows = records(5)
    assert [(r.status, r.prompt_tokens, r.completion_tokens, r.cached_tokens, r.streamed) for r in rows] == [
        (200, 40, 4, 10, False),
        (200, 12, 3, 0, True),
        (200, 21, 5, 0, True),
        (200, 21, 9, 0, False),
        (200, 21, 5, 0, False),
    ]
    assert rows[0].cost_usd == cost(40, 4, 10)
    assert {(r.provider, r.upstream_model) for r in rows} == {("vendor", UPSTREAM_MODEL)}


def test_error_classes(client: openai.OpenAI, upstream: FakeAnthropicUpstream):
    def ask(**fields):
        return client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Hi"}], **fields
        )

    upstream.enqueue(AnthropicError(429, "rate_limit_error", "Slow down", headers={"retry-after": "7"}))
    with pytest.raises(openai.RateLimitError) as limited:
        ask()
    assert limited.value.response.headers["retry-after"] == "7"
    assert limited.value.body == {
        "message": "Slow down",
        "type": "rate_limit_error",
        "param": None,
        "code": "rate_limit_exceeded",
    }

    upstream.enqueue(AnthropicError(529, "overloaded_error", "Overloaded"))
    with pytest.raises(openai.InternalServerError) as overloaded:
        ask()
    assert overloaded.value.status_code == 503
    assert overloaded.value.body["code"] == "upstream_overloaded"

    upstream.enqueue(
        AnthropicError(400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum")
    )
    with pytest.raises(openai.BadRequestError) as bad:
        ask()
    assert bad.value.body["message"] == "prompt is too long: 210000 tokens > 200000 maximum"

    upstream.api_key = "sk-ant-rotated"  # the gateway's key is now wrong
    assert_credentials_rejected(ask, secret=KEY)
    upstream.api_key = KEY

    before = len(upstream.requests)
    with pytest.raises(openai.BadRequestError) as refused:
        ask(n=2)
    assert refused.value.body["param"] == "n"
    assert len(upstream.requests) == before  # nothing was sent

    upstream.enqueue(AnthropicReply(text="one two three four", fail_after=2))
    with pytest.raises(openai.APIError) as mid_stream:
        list(ask(stream=True))
    assert "failed mid-stream: Overloaded" in mid_stream.value.message

    rows = records(6)
    assert [(r.status, r.error_type) for r in rows] == [
        (429, "rate_limit_error"),
        (503, "upstream_error"),
        (400, "invalid_request_error"),
        (502, "upstream_error"),
        (400, "invalid_request_error"),
        (502, "upstream_error"),
    ]
    assert UsageRecord.objects.filter(status=200).count() == 0
