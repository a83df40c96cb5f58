"""Streams and the cache: assembling a streamed answer into a completion, and replaying a
cached completion as chunks that reassemble to the same answer."""

from __future__ import annotations

import orjson

from routing.cache_stream import StreamAssembler, replay_chunks

HEAD = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000, "model": "m-up"}
USAGE = {"prompt_tokens": 19, "completion_tokens": 3, "total_tokens": 22}


def chunk(delta: dict[str, object], finish: str | None = None, *, index: int = 0) -> bytes:
    choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
    return orjson.dumps({**HEAD, "system_fingerprint": "fp_1", "choices": [choice]})


def usage_chunk() -> bytes:
    return orjson.dumps({**HEAD, "choices": [], "usage": USAGE})


def assemble(*payloads: bytes) -> dict[str, object] | None:
    assembler = StreamAssembler()
    for payload in payloads:
        assembler.feed(payload)
    body = assembler.completion()
    return None if body is None else orjson.loads(body)


def test_a_text_stream_becomes_the_completion():
    body = assemble(
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hello"}),
        chunk({"content": " there!"}),
        chunk({}, "stop"),
        usage_chunk(),
    )
    assert body == {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "m-up",
        "system_fingerprint": "fp_1",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello there!"},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": USAGE,
    }


def test_tool_call_deltas_are_joined_by_index():
    body = assemble(
        chunk({"role": "assistant", "content": None}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "get", "arguments": ""},
                    }
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "call_b",
                        "type": "function",
                        "function": {"name": "put", "arguments": "{}"},
                    }
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Oslo"}'}}]}),
        chunk({}, "tool_calls"),
        usage_chunk(),
    )
    assert body is not None
    [choice] = body["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "get", "arguments": '{"city":"Oslo"}'}},
            {"id": "call_b", "type": "function", "function": {"name": "put", "arguments": "{}"}},
        ],
    }


def test_streams_that_cannot_be_stored_faithfully_give_nothing():
    text = chunk({"content": "Hi"})
    assert assemble(text, usage_chunk()) is None  # no finish: cut short
    assert assemble(text, chunk({}, "content_filter"), usage_chunk()) is None
    assert assemble(text, chunk({}, "stop")) is None  # no usage
    assert assemble(text, chunk({"content": "x"}, index=1), chunk({}, "stop"), usage_chunk()) is None
    assert assemble(chunk({"refusal": "No."}), chunk({}, "stop"), usage_chunk()) is None
    assert assemble(b"not json", text, chunk({}, "stop"), usage_chunk()) is None


def test_a_replay_has_role_content_finish_and_usage_only_when_asked():
    stored = assemble(
        chunk({"role": "assistant"}), chunk({"content": "Hello there!"}), chunk({}, "length"), usage_chunk()
    )
    assert stored is not None
    payloads, text = replay_chunks(orjson.dumps(stored), include_usage=True)
    parsed = [orjson.loads(p) for p in payloads]
    assert text == "Hello there!"
    assert [p["choices"][0]["delta"] if p["choices"] else None for p in parsed] == [
        {"role": "assistant", "content": ""},
        {"content": "Hello there!"},
        {},
        None,
    ]
    assert [p["choices"][0]["finish_reason"] for p in parsed[:3]] == [None, None, "length"]
    assert parsed[3]["usage"] == USAGE
    assert {(p["id"], p["object"], p["model"], p["system_fingerprint"]) for p in parsed} == {
        ("chatcmpl-1", "chat.completion.chunk", "m-up", "fp_1")
    }
    without_usage, _ = replay_chunks(orjson.dumps(stored), include_usage=False)
    assert without_usage == payloads[:3]
    # The replay reassembles to the stored answer.
    assert assemble(*payloads) == stored


def test_a_replayed_tool_call_reassembles():
    stored = assemble(
        chunk(
            {
                "tool_calls": [
                    {"index": 0, "id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ]
            }
        ),
        chunk({}, "tool_calls"),
        usage_chunk(),
    )
    payloads, text = replay_chunks(orjson.dumps(stored), include_usage=True)
    assert text == ""
    assert assemble(*payloads) == stored
