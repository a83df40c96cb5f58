"""End to end through Daphne with the official openai SDK against the fake Gemini API: chat,
streaming, a tool-call round trip whose thought signature survives (the fake refuses it
otherwise), image input, and each error class."""

from __future__ import annotations

import json

import openai
import pytest

from tests.e2e.conftest import records
from tests.e2e.vendor_gateway import assert_credentials_rejected, cost, streamed_text, streamed_tool_calls
from tests.fakes.gemini_upstream import FakeGeminiUpstream, GeminiCall, GeminiError, GeminiReply

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MODEL = "gemini-flash"
UPSTREAM_MODEL = "gemini-2.5-flash"
KEY = "AIza-e2e-SECRET-0123456789"
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


@pytest.fixture
def upstream():
    fake = FakeGeminiUpstream(api_key=KEY).start()
    yield fake
    fake.stop()


@pytest.fixture
def client(upstream, start_vendor):
    return start_vendor(
        provider_yaml=f"""  - name: vendor
    kind: gemini
    base_url: {upstream.base_url}
    api_key_env: GW_E2E_GEMINI_KEY""",
        model=MODEL,
        upstream_model=UPSTREAM_MODEL,
        env={"GW_E2E_GEMINI_KEY": KEY},
    )


def test_chat_stream_signed_tool_round_trip_and_image(client: openai.OpenAI, upstream: FakeGeminiUpstream):
    upstream.enqueue(GeminiReply(text="Warsaw.", prompt_tokens=15, output_tokens=2, thoughts=30))
    reply = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Capital of Poland?"},
        ],
        max_completion_tokens=64,
    )
    assert (reply.id, reply.model) == ("gemFakeResp01", "gemini-2.5-flash-001")
    assert reply.choices[0].message.content == "Warsaw."
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (15, 32)
    assert reply.usage.completion_tokens_details.reasoning_tokens == 30
    first = upstream.requests[0]
    assert first.path == f"/v1beta/models/{UPSTREAM_MODEL}:generateContent"
    assert first.headers["x-goog-api-key"] == KEY
    assert first.body == {
        "contents": [{"role": "user", "parts": [{"text": "Capital of Poland?"}]}],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {"maxOutputTokens": 64},
    }

    upstream.enqueue(GeminiReply(text="The capital is Warsaw."))
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert streamed_text(chunks) == "The capital is Warsaw."
    assert chunks[-1].usage.prompt_tokens == 11
    assert upstream.requests[1].query == {"alt": "sse"}

    call = GeminiCall("get_weather", {"city": "Paris"}, signature="CiQBsig+A/==")
    upstream.enqueue(GeminiReply(text="", calls=(call,)))
    question = {
        "role": "user",
        "content": [
            {"type": "text", "text": "Weather here?"},
            {"type": "image_url", "image_url": {"url": "data:image/webp;base64,UklGRg=="}},
        ],
    }
    stream = client.chat.completions.create(model=MODEL, messages=[question], tools=[TOOL], stream=True)
    chunks = list(stream)
    [tool_call] = streamed_tool_calls(chunks)
    assert tool_call.id.endswith("__ts_CiQBsig+A/==")
    assert json.loads(tool_call.function.arguments) == {"city": "Paris"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert upstream.requests[2].body["contents"][0]["parts"][1] == {
        "inlineData": {"mimeType": "image/webp", "data": "UklGRg=="}
    }

    upstream.enqueue(GeminiReply(text="21 degrees."))
    history = [
        question,
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": tool_call.id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": tool_call.function.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": tool_call.id, "content": '{"temp_c": 21}'},
    ]
    final = client.chat.completions.create(model=MODEL, messages=history, tools=[TOOL])
    assert final.choices[0].message.content == "21 degrees."
    assert upstream.requests[3].body["contents"][1:] == [
        {
            "role": "model",
            "parts": [
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                    "thoughtSignature": "CiQBsig+A/==",
                }
            ],
        },
        {
            "role": "user",
            "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp_c": 21}}}],
        },
    ]

    # The same history with the signature stripped from the id: the fake refuses, as Gemini 3 does.
    bare = "call_nosignature"
    history[1]["tool_calls"][0]["id"] = history[2]["tool_call_id"] = bare
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=MODEL, messages=history, tools=[TOOL])
    assert "missing a thought_signature" in refused.value.body["message"]
    assert upstream.violations == [
        "Function call is missing a thought_signature in functionCall parts. contents[1]"
    ]

    rows = records(5)
    assert rows[0].cost_usd == cost(15, 32)
    assert [r.status for r in rows] == [200, 200, 200, 200, 400]


def test_error_classes(client: openai.OpenAI, upstream: FakeGeminiUpstream):
    def ask(messages=({"role": "user", "content": "Hi"},)):
        return client.chat.completions.create(model=MODEL, messages=list(messages))

    retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "6.2s"}
    upstream.enqueue(GeminiError(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.", [retry]))
    with pytest.raises(openai.RateLimitError) as limited:
        ask()
    assert limited.value.response.headers["retry-after"] == "7"

    upstream.enqueue(GeminiError(503, "UNAVAILABLE", "The model is overloaded."))
    with pytest.raises(openai.InternalServerError) as busy:
        ask()
    assert (busy.value.status_code, busy.value.body["code"]) == (503, "upstream_overloaded")

    upstream.enqueue(GeminiError(400, "INVALID_ARGUMENT", "Bad schema."))
    with pytest.raises(openai.BadRequestError) as bad:
        ask()
    assert (bad.value.body["message"], bad.value.body["code"]) == ("Bad schema.", "INVALID_ARGUMENT")

    before = len(upstream.requests)
    with pytest.raises(openai.BadRequestError) as url_image:
        ask(
            messages=[
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}]}
            ]
        )
    assert url_image.value.body["param"] == "messages.content.image_url"
    assert len(upstream.requests) == before

    upstream.api_key = "rotated"
    assert_credentials_rejected(ask, secret=KEY)
    assert [r.status for r in records(5)] == [429, 503, 400, 400, 502]
