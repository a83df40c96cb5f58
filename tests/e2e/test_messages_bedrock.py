"""``/v1/messages`` through Daphne with the anthropic SDK, served by Claude on Bedrock (the fake
Bedrock runtime verifies every SigV4 signature): the Messages request goes up as Converse with
its extended thinking and cache points, signed thinking blocks come back (and go back up on the
next turn), and the stream is written in Anthropic's events from Converse's."""

from __future__ import annotations

import anthropic
import pytest

from tests.e2e.conftest import records
from tests.e2e.messages_gateway import (
    WEATHER,
    MessagesGateway,
    cost,
    deployment_yaml,
    event_names,
    stream_event_names,
    tool_turns,
)
from tests.fakes.bedrock_upstream import REQUEST_ID, BedrockReply, FakeBedrockUpstream

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MODEL = "claude-on-bedrock"
UPSTREAM_MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
LLAMA = "llama-on-bedrock"
SECRET = "wJalrXUtnFEMI-e2e-SECRET"
CACHED = {"type": "ephemeral"}


@pytest.fixture
def upstream():
    fake = FakeBedrockUpstream(region="eu-central-1", access_key="AKIDE2E", secret_key=SECRET).start()
    yield fake
    fake.stop()


@pytest.fixture
def gw(upstream, start_messages) -> MessagesGateway:
    config = f"""
providers:
  - name: bedrock
    kind: bedrock
    base_url: {upstream.base_url}
    region: eu-central-1
    aws_access_key_id_env: GW_E2E_AWS_ID
    aws_secret_access_key_env: GW_E2E_AWS_SECRET
models:
  - name: {MODEL}
    deployments:
{deployment_yaml(provider="bedrock", model=UPSTREAM_MODEL)}
  - name: {LLAMA}
    deployments:
{deployment_yaml(provider="bedrock", model="meta.llama3-3-70b-instruct-v1:0")}
"""
    return start_messages(config, env={"GW_E2E_AWS_ID": "AKIDE2E", "GW_E2E_AWS_SECRET": SECRET})


def test_thinking_and_cache_points_reach_claude_on_bedrock(gw, upstream):
    upstream.enqueue(
        BedrockReply(
            text="",
            reasoning="The user wants the weather: call the tool.",
            tool_uses=(("tooluse_1", "get_weather", {"city": "Lyon"}),),
            input_tokens=40,
            output_tokens=30,
            cache_read=200,
            cache_write=50,
        )
    )
    first = gw.client.messages.create(
        model=MODEL,
        max_tokens=4096,
        system=[{"type": "text", "text": "You are a weather bot.", "cache_control": CACHED}],
        thinking={"type": "enabled", "budget_tokens": 2048},
        tools=[{**WEATHER, "cache_control": CACHED}],
        tool_choice={"type": "auto"},
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "Weather in Lyon?", "cache_control": CACHED}],
            }
        ],
    )
    assert first.id == f"msg_{REQUEST_ID}"
    assert [b.type for b in first.content] == ["thinking", "tool_use"]
    assert (first.content[0].thinking, first.content[0].signature) == (
        "The user wants the weather: call the tool.",
        "sig-bedrock-0001",
    )
    assert (
        first.stop_reason,
        first.usage.cache_read_input_tokens,
        first.usage.cache_creation_input_tokens,
    ) == (
        "tool_use",
        200,
        50,
    )
    sent = upstream.requests[0].body
    assert sent["system"] == [{"text": "You are a weather bot."}, {"cachePoint": {"type": "default"}}]
    assert sent["messages"] == [
        {"role": "user", "content": [{"text": "Weather in Lyon?"}, {"cachePoint": {"type": "default"}}]}
    ]
    assert sent["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "get_weather",
                    "inputSchema": {"json": WEATHER["input_schema"]},
                    "description": "Current weather in a city",
                }
            },
            {"cachePoint": {"type": "default"}},
        ],
        "toolChoice": {"auto": {}},
    }
    assert sent["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 2048}}
    assert sent["inferenceConfig"] == {"maxTokens": 4096}

    # The signed thinking block goes back up before the tool use, as Claude requires.
    upstream.enqueue(BedrockReply(text="Lyon: 18°C and clear."))
    result = {"type": "tool_result", "tool_use_id": "tooluse_1", "content": "18C clear", "is_error": False}
    final = gw.client.messages.create(
        model=MODEL,
        max_tokens=4096,
        thinking={"type": "enabled", "budget_tokens": 2048},
        tools=[WEATHER],
        messages=tool_turns("Weather in Lyon?", first, result),
    )
    assert final.content[0].text == "Lyon: 18°C and clear."
    assert upstream.requests[1].body["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {
                    "reasoningContent": {
                        "reasoningText": {
                            "text": "The user wants the weather: call the tool.",
                            "signature": "sig-bedrock-0001",
                        }
                    }
                },
                {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Lyon"}}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "toolResult": {
                        "toolUseId": "tooluse_1",
                        "content": [{"text": "18C clear"}],
                        "status": "success",
                    }
                }
            ],
        },
    ]
    assert upstream.violations == []
    rows = records(2)
    assert [(r.endpoint, r.prompt_tokens, r.cached_tokens, r.cache_write_tokens) for r in rows] == [
        ("messages", 290, 200, 50),
        ("messages", 13, 0, 0),
    ]
    # No cache-write price is set for this deployment: the writes cost the input price.
    assert rows[0].cost_usd == cost(uncached=40 + 50, output=30, cache_read=200)


def test_the_stream_is_written_in_anthropic_events(gw, upstream):
    reply = BedrockReply(text="Clear skies.", reasoning="Just answer.", input_tokens=12, output_tokens=9)
    upstream.enqueue(reply)
    body = {
        "model": MODEL,
        "max_tokens": 2048,
        "stream": True,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [{"role": "user", "content": "Sky?"}],
    }
    with gw.http.stream("POST", "/v1/messages", json=body) as response:
        streamed = response.read()
    assert stream_event_names(streamed) == event_names(2, 2, ping=False)  # reasoning, then text
    upstream.enqueue(reply)
    with gw.client.messages.stream(**{k: v for k, v in body.items() if k != "stream"}) as stream:
        deltas = [e.delta.type for e in stream if e.type == "content_block_delta"]
        final = stream.get_final_message()
    assert deltas == ["thinking_delta", "signature_delta", "text_delta", "text_delta"]
    assert [(b.type, getattr(b, "signature", None)) for b in final.content] == [
        ("thinking", "sig-bedrock-0001"),
        ("text", None),
    ]
    assert (final.usage.input_tokens, final.usage.output_tokens, final.stop_reason) == (12, 9, "end_turn")
    assert [(r.streamed, r.prompt_tokens, r.completion_tokens) for r in records(2)] == [(True, 12, 9)] * 2


def test_other_models_on_bedrock_get_neither_thinking_nor_cache_points(gw, upstream):
    upstream.enqueue(BedrockReply(text="Hi."))
    message = gw.client.messages.create(
        model=LLAMA,
        max_tokens=100,
        thinking={"type": "enabled", "budget_tokens": 1024},
        system=[{"type": "text", "text": "Be kind.", "cache_control": CACHED}],
        messages=[{"role": "user", "content": "Hello"}],
    )
    assert message.content[0].text == "Hi."
    sent = upstream.requests[0].body
    assert (sent["system"], "additionalModelRequestFields" in sent) == ([{"text": "Be kind."}], False)
    with pytest.raises(anthropic.BadRequestError) as refused:
        gw.client.messages.create(
            model=MODEL,
            max_tokens=100,
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "image", "source": {"type": "url", "url": "https://x/a.png"}}],
                }
            ],
        )
    assert refused.value.body["error"]["message"].startswith("The bedrock provider takes images as base64")
    assert len(upstream.requests) == 1
