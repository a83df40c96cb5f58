"""The mock provider's answers to tools, tool results, response formats and ``n``, called
in-process through its adapter, streamed and not: exact bodies, chunks and token counts."""

from __future__ import annotations

import orjson
import pytest
from jsonschema import Draft202012Validator

from providers.errors import UnsupportedRequest
from providers.types import Usage
from providers.vendors.mock.adapter import MockAdapter
from providers.vendors.mock.reply import MAX_REPLY_TOKENS, prompt_tokens
from tests.providers.vendors.mock.test_adapter import call

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 5},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string", "enum": ["UTC", "CET"]}}},
    },
}
ASK = {"role": "user", "content": "Paris weather in celsius? Use get_weather."}
TOOLS_BODY = {"model": "mock-echo", "messages": [ASK], "tools": [WEATHER, TIME]}
WEATHER_CALL = {
    "id": "call_1dbd770396e14f3d549bf5e4",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city":"Paris","unit":"celsius"}'},
}
# 10 tokens of the question + 3 framing + 3 priming, and the tools' compact JSON (195 tokens)
TOOLS_PROMPT = 211
ANSWERED = [
    ASK,
    {"role": "assistant", "content": None, "tool_calls": [WEATHER_CALL]},
    {"role": "tool", "tool_call_id": WEATHER_CALL["id"], "content": '{"temp_c": 21}'},
]
REPORT = 'This is mock-echo. get_weather returned: {"temp_c": 21}'
PLAN = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 5},
        "nights": {"type": "integer", "minimum": 1},
        "stops": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string", "maxLength": 4}, "day": {"type": "integer"}},
                "required": ["name", "day"],
                "additionalProperties": False,
            },
            "minItems": 2,
        },
    },
    "required": ["city", "nights", "stops"],
    "additionalProperties": False,
}
SCHEMA_FORMAT = {"type": "json_schema", "json_schema": {"name": "trip", "schema": PLAN, "strict": True}}
TRIP = {"role": "user", "content": "Paris for 3 nights, stops on day 1 and 2"}
TRIP_JSON = '{"city":"Paris","nights":3,"stops":[{"name":"Pari","day":1},{"name":"Pari","day":2}]}'


async def complete(body: dict[str, object]) -> tuple[dict[str, object], Usage | None]:
    completion = await MockAdapter().complete(call(body))
    return orjson.loads(completion.body), completion.usage


async def stream(body: dict[str, object]) -> list[dict[str, object]]:
    events = [event async for event in (await MockAdapter().open_stream(call(body))).events()]
    return [orjson.loads(event.payload) for event in events]


def assemble(chunks: list[dict[str, object]]) -> dict[int, dict[str, object]]:
    """Each choice's content, tool calls and finish reason, rebuilt from its deltas."""
    choices: dict[int, dict[str, object]] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            into = choices.setdefault(choice["index"], {"content": None, "tool_calls": {}, "finish": None})
            delta = choice["delta"]
            if delta.get("content") is not None:
                into["content"] = (into["content"] or "") + delta["content"]
            for part in delta.get("tool_calls", []):
                entry = into["tool_calls"].setdefault(part["index"], {"arguments": ""})
                entry.update({k: part[k] for k in ("id", "type") if k in part})
                entry["name"] = part["function"].get("name", entry.get("name"))
                entry["arguments"] += part["function"]["arguments"]
            into["finish"] = choice["finish_reason"] or into["finish"]
    return choices


async def test_a_named_tool_is_called_with_arguments_from_its_schema_and_the_prompt():
    body, usage = await complete(TOOLS_BODY)
    assert body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": None, "refusal": None, "tool_calls": [WEATHER_CALL]},
            "logprobs": None,
            "finish_reason": "tool_calls",
        }
    ]
    # {"city":"Paris","unit":"celsius"} is 17 tokens
    assert usage == Usage(prompt_tokens=TOOLS_PROMPT, completion_tokens=17)


async def test_the_reply_to_a_tool_result_is_text_that_quotes_it():
    body, usage = await complete({**TOOLS_BODY, "messages": ANSWERED, "tool_choice": "required"})
    assert body["choices"][0]["message"] == {"role": "assistant", "content": REPORT, "refusal": None}
    assert body["choices"][0]["finish_reason"] == "stop"
    # the assistant turn (get_weather + its 17 argument tokens, + 3) and the tool result (9 + 3)
    assert usage == Usage(prompt_tokens=TOOLS_PROMPT + 23 + 12, completion_tokens=20)


async def test_the_tool_call_streams_its_id_and_name_then_argument_fragments():
    chunks = await stream(TOOLS_BODY)
    deltas = [c["choices"][0]["delta"] for c in chunks[:-1]]
    assert deltas[0] == {"role": "assistant", "content": None}
    assert deltas[1] == {
        "tool_calls": [{"index": 0, **WEATHER_CALL, "function": {"name": "get_weather", "arguments": ""}}]
    }
    fragments = [d["tool_calls"][0]["function"]["arguments"] for d in deltas[2:-1]]
    assert fragments == [
        "{",
        '"',
        "city",
        '"',
        ":",
        '"',
        "Paris",
        '"',
        ",",
        '"',
        "unit",
        '"',
        ":",
        '"',
        "celsius",
        '"',
        "}",
    ]
    assert all(d["tool_calls"][0].keys() == {"index", "function"} for d in deltas[2:-1])
    assert deltas[-1] == {} and chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert [c["choices"][0]["finish_reason"] for c in chunks[:-2]] == [None] * (len(chunks) - 2)
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 17
    assert chunks[-1]["usage"]["prompt_tokens"] == TOOLS_PROMPT


async def test_several_named_tools_are_called_in_parallel_unless_told_otherwise():
    asked = {"role": "user", "content": "get_time in CET, then get_weather"}
    body, usage = await complete({**TOOLS_BODY, "messages": [asked]})
    calls = body["choices"][0]["message"]["tool_calls"]
    assert [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in calls] == [
        ("call_92fac897e47fa8d79a5ee184", "get_time", '{"zone":"CET"}'),
        ("call_19a90bc41155a59846797241", "get_weather", '{"city":"get_t","unit":"celsius"}'),
    ]
    assert usage.completion_tokens == 9 + 19
    chunks = await stream({**TOOLS_BODY, "messages": [asked]})
    assert assemble(chunks)[0]["tool_calls"] == {
        0: {"id": calls[0]["id"], "type": "function", "name": "get_time", "arguments": '{"zone":"CET"}'},
        1: {
            "id": calls[1]["id"],
            "type": "function",
            "name": "get_weather",
            "arguments": calls[1]["function"]["arguments"],
        },
    }
    one, _ = await complete({**TOOLS_BODY, "messages": [asked], "parallel_tool_calls": False})
    assert one["choices"][0]["message"]["tool_calls"] == [calls[0]]


async def test_tool_choice_none_answers_with_text():
    body, usage = await complete({**TOOLS_BODY, "tool_choice": "none"})
    assert body["choices"][0]["message"]["content"] == f"This is mock-echo. You said: {ASK['content']}"
    assert body["choices"][0]["finish_reason"] == "stop"
    assert usage == Usage(prompt_tokens=TOOLS_PROMPT, completion_tokens=9 + 10)


async def test_max_tokens_cuts_the_arguments_with_length():
    body, usage = await complete({**TOOLS_BODY, "max_tokens": 7})
    choice = body["choices"][0]
    assert choice["message"]["tool_calls"][0]["function"]["arguments"] == '{"city":"Paris'
    assert choice["finish_reason"] == "length"
    assert usage.completion_tokens == 7


async def test_json_object_wraps_the_reply():
    asked = {"role": "user", "content": "Answer in JSON"}
    body, usage = await complete(
        {"model": "m", "messages": [asked], "response_format": {"type": "json_object"}}
    )
    assert (
        body["choices"][0]["message"]["content"]
        == '{"message":"This is mock-echo. You said: Answer in JSON"}'
    )
    # "Answer in JSON" 3 + 3 + 3, and {"type":"json_object"} 11;
    # '{"message":"This' is 7 tokens, the rest of the reply 11, '"}' 2
    assert usage == Usage(prompt_tokens=3 + 3 + 3 + 11, completion_tokens=7 + 11 + 2)


async def test_json_object_needs_the_word_json_in_the_messages():
    with pytest.raises(UnsupportedRequest) as caught:
        await MockAdapter().open_stream(
            call({"model": "m", "messages": [ASK], "response_format": {"type": "json_object"}})
        )
    assert (caught.value.status, caught.value.param) == (400, "messages")


async def test_json_schema_output_is_exact_and_validates():
    body, usage = await complete({"model": "m", "messages": [TRIP], "response_format": SCHEMA_FORMAT})
    content = body["choices"][0]["message"]["content"]
    assert content == TRIP_JSON
    assert list(Draft202012Validator(PLAN).iter_errors(orjson.loads(content))) == []
    assert usage.completion_tokens == 53
    chunks = await stream({"model": "m", "messages": [TRIP], "response_format": SCHEMA_FORMAT})
    assert assemble(chunks) == {0: {"content": TRIP_JSON, "tool_calls": {}, "finish": "stop"}}
    assert len(chunks) == 1 + 53 + 1 + 1


async def test_json_schema_after_a_tool_result_is_filled_from_the_result():
    schema = {"type": "object", "properties": {"temp": {"type": "number"}, "said": {"type": "string"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "w", "schema": schema}}
    body, _ = await complete({**TOOLS_BODY, "messages": ANSWERED, "response_format": fmt})
    assert orjson.loads(body["choices"][0]["message"]["content"]) == {"temp": 21, "said": '{"temp_c": 21}'}


async def test_a_strict_json_schema_openai_refuses_is_a_400_before_any_chunk():
    loose = {**PLAN, "additionalProperties": True}
    fmt = {"type": "json_schema", "json_schema": {"name": "trip", "schema": loose, "strict": True}}
    with pytest.raises(UnsupportedRequest) as caught:
        await MockAdapter().open_stream(call({"model": "m", "messages": [TRIP], "response_format": fmt}))
    assert (caught.value.status, caught.value.param, caught.value.code) == (
        400,
        "response_format",
        "invalid_json_schema",
    )
    assert caught.value.message == (
        "Invalid schema for response_format 'trip': In context=(), 'additionalProperties' is required to be "
        "supplied and to be false."
    )
    # Without strict the same schema is filled: only declared properties, never extra ones.
    fmt["json_schema"]["strict"] = False
    body, _ = await complete({"model": "m", "messages": [TRIP], "response_format": fmt})
    assert body["choices"][0]["message"]["content"] == TRIP_JSON


async def test_n_choices_are_the_same_answer_and_usage_counts_them_all():
    body, usage = await complete(
        {"model": "m", "messages": [{"role": "user", "content": "Hello there"}], "n": 3}
    )
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    assert {c["message"]["content"] for c in body["choices"]} == {"This is mock-echo. You said: Hello there"}
    assert usage == Usage(prompt_tokens=8, completion_tokens=3 * 11)
    chunks = await stream({"model": "m", "messages": [{"role": "user", "content": "Hello there"}], "n": 3})
    assert [c["choices"][0]["index"] for c in chunks[:6]] == [0, 1, 2, 0, 1, 2]
    assert assemble(chunks) == {
        i: {"content": "This is mock-echo. You said: Hello there", "tool_calls": {}, "finish": "stop"}
        for i in range(3)
    }
    assert chunks[-1]["usage"]["completion_tokens"] == 33


async def test_n_tool_calls_get_ids_of_their_own():
    body, usage = await complete({**TOOLS_BODY, "n": 2})
    ids = [c["message"]["tool_calls"][0]["id"] for c in body["choices"]]
    assert ids == [WEATHER_CALL["id"], "call_dbbf6ef470e0e4785abc36c9"]
    assert usage.completion_tokens == 2 * 17
    chunks = await stream({**TOOLS_BODY, "n": 2})
    assert [assemble(chunks)[i]["tool_calls"][0]["id"] for i in range(2)] == ids


async def test_legacy_functions_answer_with_function_call():
    legacy = {
        "model": "m",
        "messages": [ASK],
        "functions": [WEATHER["function"] | {"strict": False}],
    }
    body, usage = await complete(legacy)
    assert body["choices"][0]["message"] == {
        "role": "assistant",
        "content": None,
        "refusal": None,
        "function_call": {"name": "get_weather", "arguments": '{"city":"Paris","unit":"celsius"}'},
    }
    assert body["choices"][0]["finish_reason"] == "function_call"
    assert usage.completion_tokens == 17
    chunks = await stream(legacy)
    assert chunks[1]["choices"][0]["delta"] == {"function_call": {"name": "get_weather", "arguments": ""}}
    fragments = "".join(c["choices"][0]["delta"]["function_call"]["arguments"] for c in chunks[2:-2])
    assert fragments == '{"city":"Paris","unit":"celsius"}'
    assert chunks[-2]["choices"][0]["finish_reason"] == "function_call"
    answered = [
        ASK,
        {
            "role": "assistant",
            "content": None,
            "function_call": body["choices"][0]["message"]["function_call"],
        },
        {"role": "function", "name": "get_weather", "content": "sunny"},
    ]
    reply, _ = await complete({**legacy, "messages": answered})
    assert reply["choices"][0]["message"]["content"] == "This is mock-echo. get_weather returned: sunny"


async def test_no_choice_is_longer_than_the_reply_cap():
    said = "word " * (MAX_REPLY_TOKENS + 100)
    body, usage = await complete({"model": "m", "messages": [{"role": "user", "content": said}], "n": 2})
    assert usage.completion_tokens == 2 * MAX_REPLY_TOKENS
    assert [c["finish_reason"] for c in body["choices"]] == ["length", "length"]


def test_prompt_tokens_count_the_tool_definitions_and_the_response_format():
    tools = [{"type": "function", "function": {"name": "f"}}]
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "tools": tools,
        "response_format": {"type": "text"},
    }
    # "hi" (1) + 3 + 3 priming; [{"type":"function","function":{"name":"f"}}] 25; {"type":"text"} 9
    assert prompt_tokens(body) == 7 + 25 + 9


async def test_a_choice_makes_at_most_128_calls():
    tools = [{"type": "function", "function": {"name": f"t{i}"}} for i in range(200)]
    asked = {"role": "user", "content": " ".join(f"t{i}" for i in range(200))}
    body, usage = await complete({"model": "m", "messages": [asked], "tools": tools, "n": 2})
    for choice in body["choices"]:
        calls = choice["message"]["tool_calls"]
        assert [c["function"]["name"] for c in calls] == [f"t{i}" for i in range(128)]
        assert {c["function"]["arguments"] for c in calls} == {"{}"}
        assert choice["finish_reason"] == "tool_calls"
    assert usage.completion_tokens == 2 * 128 * 2


async def test_calls_past_max_tokens_are_left_out():
    asked = {"role": "user", "content": "get_time in CET, then get_weather"}
    body, usage = await complete({**TOOLS_BODY, "messages": [asked], "max_tokens": 11})
    calls = body["choices"][0]["message"]["tool_calls"]
    assert [(c["function"]["name"], c["function"]["arguments"]) for c in calls] == [
        ("get_time", '{"zone":"CET"}'),
        ("get_weather", '{"'),
    ]
    assert body["choices"][0]["finish_reason"] == "length"
    assert usage.completion_tokens == 11
    body, usage = await complete({**TOOLS_BODY, "messages": [asked], "max_tokens": 9})
    assert [c["function"]["name"] for c in body["choices"][0]["message"]["tool_calls"]] == ["get_time"]
    assert (body["choices"][0]["finish_reason"], usage.completion_tokens) == ("length", 9)
