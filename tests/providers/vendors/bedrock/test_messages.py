"""A Messages API request as Converse and Converse's answer and stream as Messages, for Claude
on Bedrock (thinking and cache points kept) and for other Bedrock models (left out)."""

from __future__ import annotations

import orjson
import pytest

from providers.errors import UnsupportedRequest
from providers.vendors.bedrock.as_messages import ConverseAsMessages, message_from_converse
from providers.vendors.bedrock.messages import converse_from_messages

CLAUDE = "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"
CACHED = {"type": "ephemeral"}
BODY = {
    "model": "claude",
    "max_tokens": 2000,
    "stream": True,
    "system": [{"type": "text", "text": "Rules.", "cache_control": CACHED}],
    "messages": [
        {"role": "user", "content": "Read it"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Use the tool.", "signature": "sig"},
                {"type": "redacted_thinking", "data": "cmVkYWN0ZWQ="},
                {"type": "tool_use", "id": "t1", "name": "read", "input": {"path": "a"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "t1",
                    "content": [{"type": "text", "text": ""}],
                    "is_error": True,
                },
                {
                    "type": "document",
                    "title": "notes",
                    "source": {"type": "text", "media_type": "text/plain", "data": "hi"},
                },
            ],
        },
        {"role": "user", "content": [{"type": "text", "text": "Go on", "cache_control": CACHED}]},
        {"role": "system", "content": "Be brief."},
    ],
    "temperature": 0.5,
    "stop_sequences": ["END"],
    "top_k": 20,
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "tools": [{"name": "read", "input_schema": {"type": "object"}, "cache_control": CACHED}],
    "tool_choice": {"type": "tool", "name": "read"},
    "metadata": {"user_id": "u"},
    "context_management": {"edits": []},
}
POINT = {"cachePoint": {"type": "default"}}


def test_claude_gets_thinking_cache_points_and_signed_reasoning():
    assert converse_from_messages(BODY, model_id=CLAUDE) == {
        "messages": [
            {"role": "user", "content": [{"text": "Read it"}]},
            {
                "role": "assistant",
                "content": [
                    {"reasoningContent": {"reasoningText": {"text": "Use the tool.", "signature": "sig"}}},
                    {"reasoningContent": {"redactedContent": "cmVkYWN0ZWQ="}},
                    {"toolUse": {"toolUseId": "t1", "name": "read", "input": {"path": "a"}}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"toolResult": {"toolUseId": "t1", "content": [{"text": " "}], "status": "error"}},
                    {"document": {"format": "txt", "name": "notes", "source": {"bytes": "aGk="}}},
                    {"text": "Go on"},
                    POINT,
                ],
            },
        ],
        "inferenceConfig": {"maxTokens": 2000, "temperature": 0.5, "stopSequences": ["END"]},
        "system": [{"text": "Rules."}, POINT, {"text": "Be brief."}],
        "toolConfig": {
            "tools": [{"toolSpec": {"name": "read", "inputSchema": {"json": {"type": "object"}}}}, POINT],
            "toolChoice": {"tool": {"name": "read"}},
        },
        "additionalModelRequestFields": {"top_k": 20, "thinking": {"type": "enabled", "budget_tokens": 1024}},
    }


def test_other_models_get_neither_and_refuse_top_k():
    body = {k: v for k, v in BODY.items() if k != "top_k"}
    converse = converse_from_messages(body, model_id="meta.llama3-3-70b-instruct-v1:0")
    assert "additionalModelRequestFields" not in converse
    assert POINT not in converse["system"]
    assert [list(block) for block in converse["messages"][1]["content"]] == [["toolUse"]]
    with pytest.raises(UnsupportedRequest) as refused:
        converse_from_messages(BODY, model_id="meta.llama3-3-70b-instruct-v1:0")
    assert refused.value.param == "top_k"


@pytest.mark.parametrize(
    ("change", "param"),
    [
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image", "source": {"type": "url", "url": "https://x"}}],
                    }
                ]
            },
            "messages[0].content[0].source",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "search_result", "content": []}]}]},
            "messages[0].content[0].type",
        ),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0].type"),
        ({"mcp_servers": []}, "mcp_servers"),
    ],
)
def test_what_converse_cannot_carry_is_refused(change, param):
    with pytest.raises(UnsupportedRequest) as refused:
        converse_from_messages({**BODY, **change}, model_id=CLAUDE)
    assert refused.value.param == param


def test_an_answer_as_a_message():
    answer = {
        "output": {
            "message": {
                "role": "assistant",
                "content": [
                    {"reasoningContent": {"reasoningText": {"text": "Think.", "signature": "s1"}}},
                    {"reasoningContent": {"redactedContent": "eA=="}},
                    {"text": "Done."},
                    {"toolUse": {"toolUseId": "t", "name": "f", "input": {"a": 1}}},
                ],
            }
        },
        "stopReason": "guardrail_intervened",
        "usage": {"inputTokens": 5, "outputTokens": 7, "cacheReadInputTokens": 3, "cacheWriteInputTokens": 2},
    }
    assert orjson.loads(message_from_converse(orjson.dumps(answer), id="msg_r1", model=CLAUDE)) == {
        "id": "msg_r1",
        "type": "message",
        "role": "assistant",
        "model": CLAUDE,
        "content": [
            {"type": "thinking", "thinking": "Think.", "signature": "s1"},
            {"type": "redacted_thinking", "data": "eA=="},
            {"type": "text", "text": "Done."},
            {"type": "tool_use", "id": "t", "name": "f", "input": {"a": 1}},
        ],
        "stop_reason": "refusal",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 5,
            "cache_creation_input_tokens": 2,
            "cache_read_input_tokens": 3,
            "output_tokens": 7,
        },
    }


def test_a_stream_as_anthropic_events():
    renderer = ConverseAsMessages(id="msg_r2", model=CLAUDE)
    frames = [
        ("messageStart", {"role": "assistant"}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "Hm."}}}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "s"}}}),
        ("contentBlockStop", {"contentBlockIndex": 0}),
        (
            "contentBlockStart",
            {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "t", "name": "f"}}},
        ),
        ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '{"a":1}'}}}),
        ("contentBlockStop", {"contentBlockIndex": 1}),
        ("messageStop", {"stopReason": "tool_use"}),
        ("metadata", {"usage": {"inputTokens": 4, "outputTokens": 6}}),
    ]
    stream = b"".join(renderer.feed(name, orjson.dumps(payload)) for name, payload in frames)
    events = [orjson.loads(line[6:]) for line in stream.split(b"\n") if line.startswith(b"data: ")]
    assert [(e["type"], e.get("index"), (e.get("delta") or {}).get("type")) for e in events] == [
        ("message_start", None, None),
        ("content_block_start", 0, None),
        ("content_block_delta", 0, "thinking_delta"),
        ("content_block_delta", 0, "signature_delta"),
        ("content_block_stop", 0, None),
        ("content_block_start", 1, None),
        ("content_block_delta", 1, "input_json_delta"),
        ("content_block_stop", 1, None),
        ("message_delta", None, None),
        ("message_stop", None, None),
    ]
    assert events[1]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    assert events[8]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert events[8]["usage"] == {
        "input_tokens": 4,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 6,
    }
    assert renderer.end().count(b"event: ") == 2  # a stream cut after the stop still ends the message
