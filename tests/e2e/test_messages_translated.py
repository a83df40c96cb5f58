"""``/v1/messages`` through Daphne with the anthropic SDK, served by deployments that do not speak
the Messages API (the fake OpenAI and Gemini upstreams, the built-in mock): the request is
translated into the internal chat body, the answer and the stream come back in Anthropic's
format, what cannot be carried is refused before anything is sent, and a fallback from an
Anthropic deployment to an OpenAI one still answers in Anthropic's format."""

from __future__ import annotations

import json

import anthropic
import pytest

from accounting.models import UsageRecord
from tests.e2e.conftest import records
from tests.e2e.messages_gateway import (
    PNG,
    WEATHER,
    MessagesGateway,
    cost,
    deployment_yaml,
    event_names,
    stream_event_names,
    tool_turns,
)
from tests.fakes.anthropic_upstream import AnthropicError, FakeAnthropicUpstream
from tests.fakes.gemini_upstream import FakeGeminiUpstream, GeminiReply
from tests.fakes.openai_upstream import FakeOpenAIUpstream, FakeToolCall, FakeUsage, Reply

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

OPENAI_KEY = "sk-openai-e2e-SECRET-0123"
GEMINI_KEY = "AIza-e2e-SECRET-0123456789"
ANTHROPIC_KEY = "sk-ant-e2e-SECRET-0123456789"


@pytest.fixture
def upstreams():
    fakes = (
        FakeOpenAIUpstream().start(),
        FakeGeminiUpstream(api_key=GEMINI_KEY).start(),
        FakeAnthropicUpstream(api_key=ANTHROPIC_KEY).start(),
    )
    yield fakes
    for fake in fakes:
        fake.stop()


@pytest.fixture
def gw(upstreams, start_messages) -> MessagesGateway:
    openai_fake, gemini_fake, anthropic_fake = upstreams
    config = f"""
providers:
  - name: openai
    kind: openai
    base_url: {openai_fake.base_url}
    api_key_env: GW_E2E_OPENAI_KEY
  - name: gemini
    kind: gemini
    base_url: {gemini_fake.base_url}
    api_key_env: GW_E2E_GEMINI_KEY
  - name: anthropic
    kind: anthropic
    base_url: {anthropic_fake.base_url}
    api_key_env: GW_E2E_ANTHROPIC_KEY
  - name: mock
    kind: mock
    options: {{chunk_delay_ms: 0}}
models:
  - name: gpt-as-claude
    deployments:
{deployment_yaml(provider="openai", model="gpt-4.1")}
  - name: gemini-as-claude
    deployments:
{deployment_yaml(provider="gemini", model="gemini-2.5-flash")}
  - name: claude-with-fallback
    fallbacks: [gpt-as-claude]
    deployments:
{deployment_yaml(provider="anthropic", model="claude-sonnet-4-5")}
  - name: mock-echo
    deployments:
      - provider: mock
        model: mock-echo
        free: true
"""
    env = {
        "GW_E2E_OPENAI_KEY": OPENAI_KEY,
        "GW_E2E_GEMINI_KEY": GEMINI_KEY,
        "GW_E2E_ANTHROPIC_KEY": ANTHROPIC_KEY,
    }
    return start_messages(config, env=env)


def test_openai_create_with_tools_images_and_a_round_trip(gw, upstreams):
    openai_fake = upstreams[0]
    openai_fake.enqueue(
        Reply(
            content=None,
            tool_calls=(FakeToolCall("call_1", "get_weather", '{"city": "Paris"}'),),
            usage=FakeUsage(120, 18, cached_tokens=100),
        )
    )
    message = gw.client.messages.create(
        model="gpt-as-claude",
        max_tokens=512,
        system=[
            {"type": "text", "text": "Be brief."},
            {"type": "text", "text": "Use tools.", "cache_control": {"type": "ephemeral"}},
        ],
        metadata={"user_id": "user-7"},
        stop_sequences=["END"],
        tools=[WEATHER],
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather where this photo was taken?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
                ],
            }
        ],
    )
    assert message.id.startswith("msg_")
    assert message.stop_reason == "tool_use"
    assert [(b.type, b.id, b.name, b.input) for b in message.content] == [
        ("tool_use", "call_1", "get_weather", {"city": "Paris"})
    ]
    assert (
        message.usage.input_tokens,
        message.usage.cache_read_input_tokens,
        message.usage.output_tokens,
    ) == (
        20,
        100,
        18,
    )
    assert openai_fake.requests[0].body == {
        "model": "gpt-4.1",
        "messages": [
            {
                "role": "system",
                "content": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Use tools."}],
            },
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather where this photo was taken?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}},
                ],
            },
        ],
        "max_tokens": 512,
        "stop": ["END"],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "parameters": WEATHER["input_schema"],
                    "description": "Current weather in a city",
                },
            }
        ],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "user": "user-7",
    }

    openai_fake.enqueue(Reply(content="Sunny, 24°C.", usage=FakeUsage(140, 6)))
    final = gw.client.messages.create(
        model="gpt-as-claude",
        max_tokens=512,
        tools=[WEATHER],
        messages=tool_turns(
            "Weather in Paris?",
            message,
            {
                "type": "tool_result",
                "tool_use_id": "call_1",
                "content": [{"type": "text", "text": "24C sun"}],
            },
            {"type": "text", "text": "Answer in words."},
        ),
    )
    assert (final.content[0].text, final.stop_reason) == ("Sunny, 24°C.", "end_turn")
    assert openai_fake.requests[1].body["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "24C sun"},
        {"role": "user", "content": [{"type": "text", "text": "Answer in words."}]},
    ]
    rows = records(2)
    assert [(r.endpoint, r.prompt_tokens, r.cached_tokens, r.completion_tokens) for r in rows] == [
        ("messages", 120, 100, 18),
        ("messages", 140, 0, 6),
    ]
    assert rows[0].cost_usd == cost(uncached=20, cache_read=100, output=18)
    assert openai_fake.requests[0].headers["authorization"].removeprefix("Bearer ") == OPENAI_KEY


def test_openai_stream_in_anthropic_events(gw, upstreams):
    openai_fake = upstreams[0]
    reply = Reply(
        content="Checking now.",
        tool_calls=(FakeToolCall("call_9", "get_weather", '{"city": "Rome"}'),),
        usage=FakeUsage(50, 12),
    )
    openai_fake.enqueue(reply)
    body = {
        "model": "gpt-as-claude",
        "max_tokens": 256,
        "stream": True,
        "tools": [WEATHER],
        "messages": [{"role": "user", "content": "Weather in Rome?"}],
    }
    with gw.http.stream("POST", "/v1/messages", json=body) as response:
        streamed = response.read()
    assert stream_event_names(streamed) == event_names(2, 3)  # text, then the tool call
    assert openai_fake.requests[0].body["stream_options"] == {"include_usage": True}

    openai_fake.enqueue(reply)
    with gw.client.messages.stream(**{k: v for k, v in body.items() if k != "stream"}) as stream:
        deltas = [e.delta.type for e in stream if e.type == "content_block_delta"]
        final = stream.get_final_message()
    assert deltas == ["text_delta", "text_delta", "input_json_delta", "input_json_delta", "input_json_delta"]
    assert [b.type for b in final.content] == ["text", "tool_use"]
    assert (final.content[0].text, final.content[1].input) == ("Checking now.", {"city": "Rome"})
    assert (final.stop_reason, final.usage.input_tokens, final.usage.output_tokens) == ("tool_use", 50, 12)
    rows = records(2)
    assert {(r.endpoint, r.streamed, r.prompt_tokens, r.completion_tokens) for r in rows} == {
        ("messages", True, 50, 12)
    }


def test_what_the_translation_cannot_carry_is_refused_before_sending(gw, upstreams):
    openai_fake = upstreams[0]
    with pytest.raises(anthropic.BadRequestError) as top_k:
        gw.client.messages.create(
            model="gpt-as-claude",
            max_tokens=10,
            extra_body={"top_k": 5},
            messages=[{"role": "user", "content": "Hi"}],
        )
    assert top_k.value.body["error"]["type"] == "invalid_request_error"
    assert "'top_k'" in top_k.value.body["error"]["message"]
    with pytest.raises(anthropic.BadRequestError) as block:
        gw.client.messages.create(
            model="gpt-as-claude",
            max_tokens=10,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Read this"},
                        {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}},
                    ],
                }
            ],
        )
    assert "'messages[0].content[1].source'" in block.value.body["error"]["message"]
    assert openai_fake.requests == []

    # Thinking is a documented loss on a translating kind: the answer comes, without thinking.
    openai_fake.enqueue(Reply(content="42"))
    answered = gw.client.messages.create(
        model="gpt-as-claude",
        max_tokens=4096,
        thinking={"type": "enabled", "budget_tokens": 2048},
        messages=[{"role": "user", "content": "The answer?"}],
    )
    assert [b.type for b in answered.content] == ["text"]
    assert "thinking" not in openai_fake.requests[0].body
    rows = records(3)
    assert [(r.status, r.error_type) for r in rows] == [
        (400, "invalid_request_error"),
        (400, "invalid_request_error"),
        (200, ""),
    ]


def test_gemini_create_and_stream(gw, upstreams):
    gemini_fake = upstreams[1]
    gemini_fake.enqueue(GeminiReply(text="Warsaw.", prompt_tokens=9, output_tokens=2))
    message = gw.client.messages.create(
        model="gemini-as-claude",
        max_tokens=64,
        system="Answer with one word.",
        messages=[{"role": "user", "content": "Capital of Poland?"}],
    )
    assert (message.content[0].text, message.stop_reason) == ("Warsaw.", "end_turn")
    assert (message.usage.input_tokens, message.usage.output_tokens) == (9, 2)
    first = gemini_fake.requests[0]
    assert first.body["contents"] == [{"role": "user", "parts": [{"text": "Capital of Poland?"}]}]
    assert first.body["systemInstruction"] == {"parts": [{"text": "Answer with one word."}]}
    assert first.body["generationConfig"]["maxOutputTokens"] == 64

    gemini_fake.enqueue(GeminiReply(text="Kraków is older.", prompt_tokens=9, output_tokens=4))
    with gw.client.messages.stream(
        model="gemini-as-claude", max_tokens=64, messages=[{"role": "user", "content": "And Kraków?"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Kraków is older."
    assert (final.usage.input_tokens, final.usage.output_tokens, final.stop_reason) == (9, 4, "end_turn")
    assert [r.endpoint for r in records(2)] == ["messages", "messages"]


def test_mock_answers_in_anthropic_format(gw):
    message = gw.client.messages.create(
        model="mock-echo", max_tokens=100, messages=[{"role": "user", "content": "Hello there"}]
    )
    assert message.content[0].text == "This is mock-echo. You said: Hello there"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (8, 11)
    with gw.client.messages.stream(
        model="mock-echo", max_tokens=100, messages=[{"role": "user", "content": "Stream this"}]
    ) as stream:
        assert "".join(stream.text_stream) == "This is mock-echo. You said: Stream this"


def test_a_fallback_to_openai_still_answers_in_anthropic_format(gw, upstreams):
    openai_fake, _, anthropic_fake = upstreams
    anthropic_fake.enqueue(AnthropicError(500, "api_error", "boom"))
    openai_fake.enqueue(Reply(content="From the fallback.", usage=FakeUsage(10, 3)))
    message = gw.client.messages.create(
        model="claude-with-fallback",
        max_tokens=50,
        system=[{"type": "text", "text": "Hi", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "Hello"}],
    )
    assert (message.type, message.content[0].text, message.stop_reason) == (
        "message",
        "From the fallback.",
        "end_turn",
    )
    assert len(anthropic_fake.requests) == 1
    assert json.loads(anthropic_fake.requests[0].raw)["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert openai_fake.requests[0].body["messages"][0] == {
        "role": "system",
        "content": [{"type": "text", "text": "Hi"}],
    }
    [row] = records(1)
    assert (row.endpoint, row.provider, row.status) == ("messages", "openai", 200)


def test_count_tokens_counted_by_the_gateway_for_other_kinds(gw, upstreams):
    counted = gw.client.messages.count_tokens(
        model="gpt-as-claude", messages=[{"role": "user", "content": "Hello there"}]
    )
    assert counted.input_tokens == 8  # 2 tokens, 3 of framing for the message, 3 priming the reply
    assert all(fake.requests == [] for fake in upstreams)
    assert UsageRecord.objects.count() == 0
