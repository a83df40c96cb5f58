"""The built-in mock provider, called in-process through its adapter."""

from __future__ import annotations

import orjson

from providers.http import create_http_client
from providers.translation.upstream import UpstreamCall
from providers.types import DeploymentConfig, ProviderConfig, Usage
from providers.vendors.mock.adapter import MockAdapter


def call(body, *, delay: float | None = 0.0) -> UpstreamCall:
    provider = ProviderConfig(name="mock", kind="mock", base_url="", chunk_delay_ms=delay)
    return UpstreamCall(
        deployment=DeploymentConfig(id=1, provider=provider, upstream_model="mock-echo"),
        body=body,
        http=create_http_client(max_connections=1, timeout_seconds=5, connect_timeout=5),  # never used
        timeout_seconds=5,
        request_id="req_1",
    )


BODY = {
    "model": "mock-echo",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Hi, mock!"}]},
    ],
}


# OpenAI's usage object for 16 prompt and 13 completion tokens, as the mock sends it.
USAGE_WIRE = {
    "prompt_tokens": 16,
    "completion_tokens": 13,
    "total_tokens": 29,
    "prompt_tokens_details": {"cached_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0},
}


async def test_completion_echoes_the_last_user_message_with_real_counts():
    completion = await MockAdapter().complete(call(BODY))
    body = orjson.loads(completion.body)
    assert body["choices"][0]["message"]["content"] == "This is mock-echo. You said: Hi, mock!"
    assert body["choices"][0]["finish_reason"] == "stop"
    # prompt: "Be brief." (3) + "Hi, mock!" (4) + 2 x 3 framing + 3 priming
    assert completion.usage == Usage(prompt_tokens=16, completion_tokens=13)
    assert body["usage"] == USAGE_WIRE


async def test_max_tokens_truncates_with_length():
    completion = await MockAdapter().complete(call({**BODY, "max_tokens": 3}))
    body = orjson.loads(completion.body)
    assert body["choices"][0]["message"]["content"] == "This is mock"
    assert body["choices"][0]["finish_reason"] == "length"
    assert completion.usage == Usage(prompt_tokens=16, completion_tokens=3)


async def test_stream_sends_one_chunk_per_token_then_finish_then_usage():
    stream = await MockAdapter().open_stream(call(BODY))
    events = [event async for event in stream.events()]
    texts = [e.text for e in events if e.text]
    assert "".join(texts) == "This is mock-echo. You said: Hi, mock!"
    assert len(texts) == 13
    chunks = [orjson.loads(e.payload) for e in events]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert events[-1].usage_only and events[-1].usage == Usage(prompt_tokens=16, completion_tokens=13)
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == USAGE_WIRE
    assert len({c["id"] for c in chunks}) == 1
