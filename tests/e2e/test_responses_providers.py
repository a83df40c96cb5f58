"""The Responses API through the provider adapters, end to end with the official SDK: the fake
OpenAI upstream (what the internal request sends, exactly), and the fake Anthropic and Gemini
upstreams (translated to their wire formats and back), streamed and not, with function calls
and ``previous_response_id``; failures before and after the first byte."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from stored_responses.models import StoredResponse
from tests.e2e.conftest import MODEL, UPSTREAM_MODEL, records
from tests.e2e.spec_schemas import event_errors, spec_errors, sse_events
from tests.fakes.anthropic_upstream import AnthropicReply, FakeAnthropicUpstream, ToolUse
from tests.fakes.gemini_upstream import FakeGeminiUpstream, GeminiCall, GeminiReply
from tests.fakes.openai_upstream import ErrorReply, FakeToolCall, FakeUsage, Reply

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": False,
}
CHAT_WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather",
        "parameters": WEATHER["parameters"],
        "strict": False,
    },
}


def test_openai_upstream_gets_the_internal_chat_request(start_proxy) -> None:
    proxy = start_proxy()
    proxy.upstream.enqueue(
        Reply(
            content=None,
            tool_calls=(FakeToolCall("call_1", "get_weather", '{"city":"Oslo"}'),),
            usage=FakeUsage(40, 9),
        )
    )
    first = proxy.client.responses.create(
        model=MODEL,
        instructions="Be brief.",
        input="Weather in Oslo?",
        tools=[WEATHER],
        tool_choice="required",
        parallel_tool_calls=False,
        max_output_tokens=300,
        temperature=0.2,
        top_p=0.9,
        user="u-1",
        metadata={"ticket": "7"},
        reasoning={"effort": "low"},
        text={"verbosity": "low"},
    )
    assert proxy.upstream.requests[0].body == {
        "model": UPSTREAM_MODEL,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Oslo?"},
        ],
        "max_completion_tokens": 300,
        "temperature": 0.2,
        "top_p": 0.9,
        "user": "u-1",
        "tools": [CHAT_WEATHER],
        "parallel_tool_calls": False,
        "tool_choice": "required",
        "verbosity": "low",
        "reasoning_effort": "low",
    }
    [call] = first.output
    assert (call.type, call.call_id, call.name, call.arguments) == (
        "function_call",
        "call_1",
        "get_weather",
        '{"city":"Oslo"}',
    )
    assert (first.usage.input_tokens, first.usage.output_tokens, first.usage.total_tokens) == (40, 9, 49)
    assert first.metadata == {"ticket": "7"} and first.reasoning.effort == "low"

    proxy.upstream.enqueue(Reply(content="Sunny, 21.", usage=FakeUsage(60, 4)))
    second = proxy.client.responses.create(
        model=MODEL,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": "call_1", "output": "sunny, 21C"}],
        stream=True,
    )
    kinds = [event.type for event in second]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    # the stored history replayed: instructions are not carried over, the call and its output are
    assert proxy.upstream.requests[1].body == {
        "model": UPSTREAM_MODEL,
        "messages": [
            {"role": "user", "content": "Weather in Oslo?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21C"},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    rows = records(2)
    assert [(r.endpoint, r.prompt_tokens, r.completion_tokens, r.streamed) for r in rows] == [
        ("responses", 40, 9, False),
        ("responses", 60, 4, True),
    ]


def test_upstream_errors_before_and_after_the_first_byte(start_proxy) -> None:
    proxy = start_proxy()
    proxy.upstream.enqueue(
        ErrorReply(400, "This model's maximum context length is 8 tokens.", code="context_length_exceeded")
    )
    with pytest.raises(openai.BadRequestError) as refused:
        proxy.client.responses.create(model=MODEL, input="Too long")
    assert refused.value.body["code"] == "context_length_exceeded"

    proxy.upstream.enqueue(Reply(content="One two three four", fail_after=2, failure="error"))
    with proxy.http.stream(
        "POST", "/v1/responses", json={"model": MODEL, "input": "Count", "stream": True}
    ) as raw:
        assert raw.status_code == 200
        events = sse_events(raw.read().decode())
    assert [name for name, _ in events][-2:] == ["response.output_text.delta", "response.failed"]
    for _, data in events:
        assert event_errors(data) == []
    failed = events[-1][1]["response"]
    assert failed["status"] == "failed" and failed["error"]["code"] == "server_error"
    assert failed["output"][0]["content"][0]["text"] == "One two"
    assert proxy.upstream_key not in json.dumps(events)
    rows = records(2)
    assert [(r.status, r.endpoint) for r in rows] == [(400, "responses"), (502, "responses")]
    assert failed["usage"]["output_tokens"] == rows[1].completion_tokens
    assert StoredResponse.objects.count() == 0  # neither failure is kept


def vendor_client(start_vendor, *, kind: str, base_url: str, model: str, key: str) -> openai.OpenAI:
    """A gateway serving ``model`` from the fake vendor at ``base_url`` (key ``key``)."""
    return start_vendor(
        provider_yaml=f"""  - name: vendor
    kind: {kind}
    base_url: {base_url}
    api_key_env: GW_E2E_VENDOR_KEY""",
        model=model,
        upstream_model=f"{model}-upstream",
        env={"GW_E2E_VENDOR_KEY": key},
    )


@pytest.fixture
def anthropic_upstream():
    fake = FakeAnthropicUpstream(api_key="sk-ant-e2e").start()
    yield fake
    fake.stop()


@pytest.fixture
def gemini_upstream():
    fake = FakeGeminiUpstream(api_key="AIza-e2e").start()
    yield fake
    fake.stop()


def test_anthropic_translation_with_tool_round_trip(start_vendor, anthropic_upstream) -> None:
    upstream = anthropic_upstream
    client = vendor_client(
        start_vendor, kind="anthropic", base_url=upstream.base_url, model="claude", key="sk-ant-e2e"
    )
    upstream.enqueue(
        AnthropicReply(text="", tool_uses=(ToolUse("toolu_1", "get_weather", {"city": "Rome"}),))
    )
    first = client.responses.create(
        model="claude", input="Weather in Rome?", tools=[WEATHER], max_output_tokens=200
    )
    [call] = first.output
    assert (call.call_id, call.name, json.loads(call.arguments)) == (
        "toolu_1",
        "get_weather",
        {"city": "Rome"},
    )
    assert upstream.requests[0].body["max_tokens"] == 200
    assert upstream.requests[0].body["tools"][0]["name"] == "get_weather"

    upstream.enqueue(AnthropicReply(text="Rome is warm.", input_tokens=50, output_tokens=4))
    with client.responses.stream(
        model="claude",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": "toolu_1", "output": "30C"}],
    ) as stream:
        final = stream.get_final_response()
    assert final.output_text == "Rome is warm."
    assert (final.usage.input_tokens, final.usage.output_tokens) == (50, 4)
    assert upstream.requests[1].body["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Rome"}}
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "30C"}],
        },
    ]
    # json_object has no Anthropic form: refused before the upstream, naming the client's parameter
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="claude", input="json please", text={"format": {"type": "json_object"}})
    assert refused.value.body["param"] == "text.format"
    assert len(upstream.requests) == 2


def test_gemini_translation_streamed_with_an_image(start_vendor, gemini_upstream) -> None:
    upstream = gemini_upstream
    client = vendor_client(
        start_vendor, kind="gemini", base_url=upstream.base_url, model="gemini", key="AIza-e2e"
    )
    upstream.enqueue(GeminiReply(text="A red square.", prompt_tokens=20, output_tokens=4))
    image = {"type": "input_image", "image_url": "data:image/webp;base64,UklGRg==", "detail": "auto"}
    with client.responses.stream(
        model="gemini",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "What is it?"}, image]}],
    ) as stream:
        final = stream.get_final_response()
    assert final.output_text == "A red square."
    assert upstream.requests[0].body["contents"] == [
        {
            "role": "user",
            "parts": [
                {"text": "What is it?"},
                {"inlineData": {"mimeType": "image/webp", "data": "UklGRg=="}},
            ],
        }
    ]
    upstream.enqueue(GeminiReply(text="", calls=(GeminiCall("get_weather", {"city": "Oslo"}),)))
    raw = client.responses.with_raw_response.create(model="gemini", input="Weather in Oslo?", tools=[WEATHER])
    assert spec_errors("Response", json.loads(raw.text)) == []
    [call] = raw.parse().output
    assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "Oslo"})


def test_responses_and_chat_never_share_a_cache_entry(start_proxy) -> None:
    proxy = start_proxy(
        extra_yaml=f"""
models:
  - name: {MODEL}
    cache: {{ttl_seconds: 300}}
    deployments:
      - provider: fake-openai
        model: {UPSTREAM_MODEL}
        input_per_million: "0.15"
        output_per_million: "0.60"
"""
    )
    proxy.upstream.enqueue(Reply(content="from chat"), Reply(content="from responses"))
    chat = proxy.http.post("/v1/chat/completions", json=proxy.chat_body("Same words"))
    first = proxy.http.post("/v1/responses", json={"model": MODEL, "input": "Same words", "store": False})
    again = proxy.http.post("/v1/responses", json={"model": MODEL, "input": "Same words", "store": False})
    assert [r.headers["x-gateway-cache"] for r in (chat, first, again)] == ["miss", "miss", "hit"]
    assert len(proxy.upstream.requests) == 2
    assert first.json()["output"][0]["content"][0]["text"] == "from responses"
    assert again.json()["output"] == [{**first.json()["output"][0], "id": again.json()["output"][0]["id"]}]
    assert again.json()["id"] != first.json()["id"]
    assert [(r.endpoint, r.cache_hit) for r in records(3)] == [
        ("chat.completions", False),
        ("responses", False),
        ("responses", True),
    ]
    assert chat.status_code == httpx.codes.OK
