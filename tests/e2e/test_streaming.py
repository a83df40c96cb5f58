"""The OpenAI proxy path, streaming: SSE relayed chunk by chunk from the fake OpenAI upstream
through a Daphne gateway, with usage handling, client disconnects and failures after the first
byte."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import httpx
import openai
import pytest

from tests.conftest import wait_for
from tests.e2e.conftest import (
    MODEL,
    UPSTREAM_MODEL,
    Proxy,
    assert_gateway_headers,
    error_body,
    expected_cost,
    records,
)
from tests.fakes.openai_upstream import COMPLETION_ID, CREATED, FakeUsage, Reply

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# "Say hello" (the default prompt): 2 tokens + 3 per message + 3 reply priming, as the gateway
# estimates a stream the upstream never reported usage for.
ESTIMATED_PROMPT_TOKENS = 8


def read_events(response: httpx.Response) -> list[str]:
    """The ``data:`` payloads of an SSE response, in order (no other lines are expected)."""
    assert response.headers["content-type"].startswith("text/event-stream")
    events = []
    for block in response.read().decode().split("\n\n"):
        if block:
            assert block.startswith("data: "), block
            events.append(block.removeprefix("data: "))
    return events


def stream_request(proxy: Proxy, **fields: object) -> httpx.Response:
    response = proxy.http.post("/v1/chat/completions", json=proxy.chat_body(stream=True, **fields))
    assert response.status_code == 200
    assert_gateway_headers(response)
    return response


def chunk(delta: dict[str, object], finish: str | None = None) -> dict[str, object]:
    """A chunk as the fake sends it when usage was requested (the gateway always requests it)."""
    return {
        "id": COMPLETION_ID,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": UPSTREAM_MODEL,
        "system_fingerprint": "fp_fake",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        "usage": None,
    }


def test_usage_chunk_is_relayed_only_when_the_client_asked(start_proxy):
    proxy: Proxy = start_proxy()
    reply = Reply(content="Hello from the fake", usage=FakeUsage(9, 4))
    proxy.upstream.default = reply

    without = read_events(stream_request(proxy))
    with_usage = read_events(stream_request(proxy, stream_options={"include_usage": True}))
    sdk_plain = list(
        proxy.client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Say hello"}],
            stream=True,
            stream_options={"include_usage": False},
        )
    )
    sdk_usage = list(
        proxy.client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Say hello"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    # An upstream that sends no usage at all: nothing to relay, and the gateway counts the tokens.
    proxy.upstream.default = Reply(content="Hello from the fake", usage=None)
    no_upstream_usage = read_events(stream_request(proxy, stream_options={"include_usage": True}))

    content = [chunk({"role": "assistant", "content": ""})] + [
        chunk({"content": piece}) for piece in ("Hello", " from", " the", " fake")
    ]
    finish = chunk({}, "stop")
    usage_chunk = {
        "id": COMPLETION_ID,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": UPSTREAM_MODEL,
        "system_fingerprint": "fp_fake",
        "choices": [],
        "usage": {
            "prompt_tokens": 9,
            "completion_tokens": 4,
            "total_tokens": 13,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }
    assert [json.loads(e) for e in without[:-1]] == [*content, finish]
    assert without[-1] == "[DONE]"
    assert [json.loads(e) for e in with_usage[:-1]] == [*content, finish, usage_chunk]
    assert with_usage[-1] == "[DONE]"
    assert [json.loads(e) for e in no_upstream_usage[:-1]] == [*content, finish]
    assert no_upstream_usage[-1] == "[DONE]"

    assert "".join(c.choices[0].delta.content or "" for c in sdk_plain) == "Hello from the fake"
    assert [c.usage for c in sdk_plain] == [None] * 6
    assert "".join(c.choices[0].delta.content or "" for c in sdk_usage[:-1]) == "Hello from the fake"
    assert sdk_usage[-1].choices == []
    assert (sdk_usage[-1].usage.prompt_tokens, sdk_usage[-1].usage.completion_tokens) == (9, 4)

    # The gateway always asks the upstream for usage, whatever the client said.
    sent = proxy.upstream.requests
    assert len(sent) == 5
    for request in sent:
        assert request.body["model"] == UPSTREAM_MODEL
        assert (request.body["stream"], request.body["stream_options"]) == (True, {"include_usage": True})
        assert request.headers["accept"] == "text/event-stream"
    *rows, estimated = records(5)
    for row in rows:
        assert (row.prompt_tokens, row.completion_tokens, row.usage_estimated) == (9, 4, False)
        assert (row.status, row.error_type, row.streamed, row.client_disconnected) == (200, "", True, False)
        assert row.cost_usd == expected_cost(9, 4) == Decimal("0.00000375")
        assert 0 < row.ttft_ms <= row.latency_ms
    # "Say hello" and "Hello from the fake" (4 tokens), counted by the gateway.
    assert (estimated.prompt_tokens, estimated.completion_tokens) == (ESTIMATED_PROMPT_TOKENS, 4)
    assert (estimated.usage_estimated, estimated.status, estimated.error_type) == (True, 200, "")
    assert estimated.cost_usd == expected_cost(ESTIMATED_PROMPT_TOKENS, 4)


def test_client_disconnect_cancels_the_upstream_and_is_recorded_once(start_proxy):
    proxy: Proxy = start_proxy()
    words = tuple(" " + "x" * n for n in range(1, 41))  # one token each
    proxy.upstream.enqueue(Reply(chunks=words, chunk_delay=0.05, usage=FakeUsage(8, 40)))

    received: list[dict[str, object]] = []
    with proxy.http.stream("POST", "/v1/chat/completions", json=proxy.chat_body(stream=True)) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: "):
                received.append(json.loads(line.removeprefix("data: ")))
            if len(received) == 4:  # the role chunk and three words
                break
    # Leaving the block closed the connection mid-stream.

    assert [c["choices"][0]["delta"] for c in received[1:]] == [{"content": w} for w in words[:3]]
    wait_for(lambda: proxy.upstream.client_disconnects == 1)
    [record] = records(1)
    assert (record.status, record.error_type) == (499, "client_disconnected")
    assert (record.streamed, record.client_disconnected, record.usage_estimated) == (True, True, True)
    assert record.prompt_tokens == ESTIMATED_PROMPT_TOKENS
    assert 3 <= record.completion_tokens < 40
    assert record.cost_usd == expected_cost(ESTIMATED_PROMPT_TOKENS, record.completion_tokens)

    # A later request's row is the fence: the disconnected request was recorded exactly once.
    assert proxy.http.post("/v1/chat/completions", json=proxy.chat_body()).status_code == 200
    first, second = records(2)
    assert (first.request_id, second.status) == (record.request_id, 200)
    assert len(proxy.upstream.requests) == 2
    assert proxy.upstream.client_disconnects == 1


def test_stream_failing_after_the_first_byte_ends_with_an_error_event(start_proxy, openai_upstream):
    proxy: Proxy = start_proxy(
        extra_yaml=f"""
providers:
  - name: slow-openai
    kind: openai
    base_url: {openai_upstream.base_url}
    api_key_env: GW_E2E_FAKE_OPENAI_KEY
    timeout_seconds: 0.5
models:
  - name: slow-model
    deployments:
      - provider: slow-openai
        model: gpt-4o-mini-upstream
        input_per_million: "0.15"
        output_per_million: "0.60"
"""
    )
    upstream = proxy.upstream
    two_words = {"chunks": ("One", " two", " three"), "fail_after": 2, "usage": FakeUsage(8, 3)}
    upstream.enqueue(
        Reply(**two_words, failure="reset"),
        Reply(**two_words, failure="close"),
        Reply(**two_words, failure="eof"),
        Reply(**two_words, failure="malformed"),
        Reply(chunks=("One", " two"), usage=FakeUsage(8, 2), done=False),
        Reply(chunks=("One", " two", " three"), stall_after=2, stall_seconds=3.0),
    )
    unreachable = error_body(
        "The upstream provider 'fake-openai' could not be reached.",
        "upstream_error",
        code="upstream_unreachable",
    )
    incomplete = error_body(
        "The upstream provider 'fake-openai' ended the stream before it was complete.",
        "upstream_error",
        code="upstream_bad_response",
    )
    not_json = error_body(
        "The upstream provider sent a response that is not JSON.",
        "upstream_error",
        code="upstream_bad_response",
    )
    timed_out = error_body(
        "The upstream provider 'slow-openai' did not answer in time.",
        "timeout_error",
        code="upstream_timeout",
    )
    start = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "One"}),
        chunk({"content": " two"}),
    ]

    cases = [
        (stream_request(proxy), [*start, unreachable]),
        (stream_request(proxy), [*start, unreachable]),
        (stream_request(proxy), [*start, incomplete]),
        (stream_request(proxy), [*start, not_json]),
        (stream_request(proxy), [*start, chunk({}, "stop"), incomplete]),
        (stream_request(proxy, model="slow-model"), [*start, timed_out]),
    ]
    for response, expected in cases:
        events = read_events(response)
        assert "[DONE]" not in events
        assert [json.loads(e) for e in events] == expected

    # The SDK raises on the error event.
    upstream.enqueue(Reply(**two_words, failure="reset"))
    stream = proxy.client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Say hello"}], stream=True
    )
    seen = []
    with pytest.raises(openai.APIError) as raised:
        for item in stream:
            seen.append(item.choices[0].delta.content)
    assert seen == ["", "One", " two"]
    assert raised.value.body == unreachable["error"]

    assert len(upstream.requests) == 7
    wait_for(lambda: upstream.client_disconnects == 1)  # the stalled stream, abandoned by the gateway
    rows = records(7)
    assert upstream.client_disconnects == 1
    assert [(r.model, r.status, r.error_type, r.streamed, r.client_disconnected) for r in rows] == [
        (MODEL, 502, "upstream_error", True, False),
        (MODEL, 502, "upstream_error", True, False),
        (MODEL, 502, "upstream_error", True, False),
        (MODEL, 502, "upstream_error", True, False),
        (MODEL, 502, "upstream_error", True, False),
        ("slow-model", 504, "timeout_error", True, False),
        (MODEL, 502, "upstream_error", True, False),
    ]
    # Cut short before the upstream's usage chunk: counted by the gateway ("One two" = 2 tokens).
    estimated = [r for i, r in enumerate(rows) if i != 4]
    for row in estimated:
        assert (row.prompt_tokens, row.completion_tokens, row.usage_estimated) == (
            ESTIMATED_PROMPT_TOKENS,
            2,
            True,
        )
        assert row.cost_usd == expected_cost(ESTIMATED_PROMPT_TOKENS, 2)
    # Complete but for [DONE]: the upstream's own usage counts.
    assert (rows[4].prompt_tokens, rows[4].completion_tokens, rows[4].usage_estimated) == (8, 2, False)


def test_chunks_reach_the_client_as_the_upstream_sends_them(start_proxy):
    proxy: Proxy = start_proxy()
    proxy.upstream.enqueue(
        Reply(chunks=tuple(f" c{i}" for i in range(10)), first_chunk_delay=0.2, chunk_delay=0.2)
    )

    arrivals: list[float] = []
    started = time.perf_counter()
    with proxy.http.stream("POST", "/v1/chat/completions", json=proxy.chat_body(stream=True)) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: {") and json.loads(line[6:])["choices"][0]["delta"].get("content"):
                arrivals.append(time.perf_counter() - started)
            if line == "data: [DONE]":
                break
    total = time.perf_counter() - started

    assert len(arrivals) == 10
    assert total >= 1.9  # ten chunks 200 ms apart
    # Structural, not a benchmark: the first chunk arrives long before the stream ends, and the
    # chunks arrive spread out as they were sent, not in one burst at the end.
    assert arrivals[0] < 0.4 * total
    assert arrivals[-1] - arrivals[0] > 1.2
    [record] = records(1)
    assert record.ttft_ms < 0.4 * record.latency_ms
