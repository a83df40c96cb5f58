"""The bytes on the wire: the client's chat request, the upstream's fixed ``chat.completion``,
and the upstream's stream of ``chat.completion.chunk`` events (OpenAI's wire format)."""

from __future__ import annotations

import orjson

CREATED = 1_700_000_000
STREAM_CONTENT_CHUNKS = 20
STREAM_FIRST_DELAY = 0.050
STREAM_CHUNK_GAP = 0.010
UPSTREAM_DELAY = 0.050


def chat_request(model: str, *, stream: bool = False) -> bytes:
    body: dict[str, object] = {
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a benchmark."},
            {"role": "user", "content": "Say hello in five words."},
        ],
        "max_tokens": 32,
        "temperature": 0,
    }
    if stream:
        body["stream"] = True
    return orjson.dumps(body)


def completion(model: str = "bench-upstream") -> bytes:
    """A complete, small ``chat.completion`` answer with usage."""
    return orjson.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": CREATED,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Hello there, from the bench."},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 19, "completion_tokens": 7, "total_tokens": 26},
        }
    )


def _chunk(model: str, choices: list[dict[str, object]], usage: dict[str, int] | None = None) -> bytes:
    body: dict[str, object] = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
        "choices": choices,
    }
    if usage is not None:
        body["usage"] = usage
    return b"data: " + orjson.dumps(body) + b"\n\n"


def stream_events(model: str = "bench-upstream") -> list[bytes]:
    """``STREAM_CONTENT_CHUNKS`` content chunks (the last one carries ``finish_reason``), then
    the usage chunk (empty ``choices``), then ``[DONE]``: each item is one SSE event."""
    events = []
    for index in range(STREAM_CONTENT_CHUNKS):
        delta: dict[str, str] = {"content": f"tok{index} "}
        if index == 0:
            delta["role"] = "assistant"
        last = index == STREAM_CONTENT_CHUNKS - 1
        events.append(
            _chunk(model, [{"index": 0, "delta": delta, "finish_reason": "stop" if last else None}])
        )
    usage = {"prompt_tokens": 19, "completion_tokens": STREAM_CONTENT_CHUNKS, "total_tokens": 39}
    events.append(_chunk(model, [], usage))
    events.append(b"data: [DONE]\n\n")
    return events
