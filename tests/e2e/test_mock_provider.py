"""The embedded mock provider through a real Daphne process, driven by the OpenAI SDK."""

from __future__ import annotations

import json
from typing import Literal

import openai
import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel, Field

from accounting.models import UsageRecord
from tests.conftest import mock_echo_yaml, wait_for
from tests.providers.vendors.mock.test_reply import (
    ANSWERED,
    ASK,
    PLAN,
    REPORT,
    SCHEMA_FORMAT,
    TIME,
    TOOLS_PROMPT,
    TRIP,
    TRIP_JSON,
    WEATHER,
    WEATHER_CALL,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MOCK = mock_echo_yaml(input_per_million="1", output_per_million="2")


def test_mock_echo_chat_and_usage_record(gateway_factory, configure, make_key):
    configure(MOCK)
    key = make_key("demo")
    gateway = gateway_factory()
    client = openai.OpenAI(base_url=f"{gateway.base_url}/v1", api_key=key.raw, max_retries=0)

    completion = client.chat.completions.create(
        model="mock-echo", messages=[{"role": "user", "content": "Hello there"}]
    )

    assert completion.choices[0].message.content == "This is mock-echo. You said: Hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (8, 11)
    record = wait_for(lambda: UsageRecord.objects.first())
    assert record.tenant_name == "demo"
    assert (record.prompt_tokens, record.completion_tokens, record.status) == (8, 11, 200)
    # 8 prompt tokens at $1/M + 11 completion tokens at $2/M
    assert str(record.cost_usd.normalize()) == "0.00003"
    assert UsageRecord.objects.count() == 1


# Tools, tool results, response formats and n, through Daphne with the OpenAI SDK. The mock is
# deterministic: the exact answers and token counts are those of tests/providers/test_mock_reply.py.

TOOLS = [WEATHER, TIME]
HELLO = [{"role": "user", "content": "Hello there"}]


def sdk_client(gateway_factory, configure, make_key) -> openai.OpenAI:
    configure(MOCK)
    key = make_key("demo")
    return openai.OpenAI(base_url=f"{gateway_factory().base_url}/v1", api_key=key.raw, max_retries=0)


def create(client: openai.OpenAI, **fields):
    """A non-streamed completion and the gateway's request id for it."""
    raw = client.chat.completions.with_raw_response.create(model="mock-echo", **fields)
    return raw.parse(), raw.headers["x-request-id"]


def create_streamed(client: openai.OpenAI, **fields):
    """A streamed completion, rebuilt per choice: (choices, usage, chunk count, request id)."""
    raw = client.chat.completions.with_raw_response.create(
        model="mock-echo", stream=True, stream_options={"include_usage": True}, **fields
    )
    choices: dict[int, dict] = {}
    usage, count = None, 0
    for chunk in raw.parse():
        count += 1
        usage = chunk.usage or usage
        for choice in chunk.choices:
            into = choices.setdefault(choice.index, {"content": None, "tool_calls": {}, "finish": None})
            if choice.delta.content:
                into["content"] = (into["content"] or "") + choice.delta.content
            for part in choice.delta.tool_calls or []:
                call = into["tool_calls"].setdefault(part.index, {"id": None, "name": "", "arguments": ""})
                call["id"] = part.id or call["id"]
                call["name"] += part.function.name or ""
                call["arguments"] += part.function.arguments or ""
            into["finish"] = choice.finish_reason or into["finish"]
    return choices, usage, count, raw.headers["x-request-id"]


def tokens_by_request() -> dict[str, tuple[int, int, int]]:
    return {r.request_id: (r.prompt_tokens, r.completion_tokens, r.status) for r in UsageRecord.objects.all()}


def expect_records(expected: dict[str, tuple[int, int, int]]) -> None:
    """Exactly these usage records: (prompt tokens, completion tokens, status) by request id."""
    wait_for(lambda: UsageRecord.objects.count() >= len(expected))
    assert tokens_by_request() == expected


def tool_calls_of(message) -> list[tuple[str, str, str]]:
    return [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls or []]


def test_function_tool_round_trip(gateway_factory, configure, make_key):
    client = sdk_client(gateway_factory, configure, make_key)

    first, first_id = create(client, messages=[ASK], tools=TOOLS)
    assert first.choices[0].finish_reason == "tool_calls"
    assert first.choices[0].message.content is None
    assert tool_calls_of(first.choices[0].message) == [
        (WEATHER_CALL["id"], "get_weather", WEATHER_CALL["function"]["arguments"])
    ]
    result = {
        "role": "tool",
        "tool_call_id": first.choices[0].message.tool_calls[0].id,
        "content": '{"temp_c": 21}',
    }
    assistant = first.choices[0].message.model_dump(exclude_none=True)
    second, second_id = create(client, messages=[ASK, assistant, result], tools=TOOLS)

    assert second.choices[0].message.content == REPORT
    assert second.choices[0].finish_reason == "stop"
    assert (second.usage.prompt_tokens, second.usage.completion_tokens) == (TOOLS_PROMPT + 35, 20)
    expect_records({first_id: (TOOLS_PROMPT, 17, 200), second_id: (TOOLS_PROMPT + 35, 20, 200)})


def test_function_tool_round_trip_streamed(gateway_factory, configure, make_key):
    client = sdk_client(gateway_factory, configure, make_key)

    choices, usage, count, first_id = create_streamed(client, messages=[ASK], tools=TOOLS)
    assert choices == {
        0: {
            "content": None,
            "tool_calls": {
                0: {
                    "id": WEATHER_CALL["id"],
                    "name": "get_weather",
                    "arguments": WEATHER_CALL["function"]["arguments"],
                }
            },
            "finish": "tool_calls",
        }
    }
    # the role, the call's first delta, 17 argument fragments, the finish, the usage
    assert count == 1 + 1 + 17 + 1 + 1
    assert (usage.prompt_tokens, usage.completion_tokens) == (TOOLS_PROMPT, 17)
    choices, usage, _, second_id = create_streamed(client, messages=ANSWERED, tools=TOOLS)
    assert choices == {0: {"content": REPORT, "tool_calls": {}, "finish": "stop"}}
    expect_records({first_id: (TOOLS_PROMPT, 17, 200), second_id: (TOOLS_PROMPT + 35, 20, 200)})


class GetWeather(BaseModel):
    city: str = Field(max_length=5)
    unit: Literal["celsius", "fahrenheit"]


def test_the_sdk_tool_helpers_parse_the_calls(gateway_factory, configure, make_key):
    client = sdk_client(gateway_factory, configure, make_key)
    ask = [{"role": "user", "content": "Call GetWeather for Paris, in fahrenheit"}]
    tools = [openai.pydantic_function_tool(GetWeather)]

    parsed = client.chat.completions.parse(model="mock-echo", messages=ask, tools=tools)
    with client.chat.completions.stream(model="mock-echo", messages=ask, tools=tools) as helper:
        streamed = helper.get_final_completion()

    for completion in (parsed, streamed):
        (call,) = completion.choices[0].message.tool_calls
        assert (call.function.name, call.function.parsed_arguments) == (
            "GetWeather",
            GetWeather(city="Call ", unit="fahrenheit"),
        )
        assert completion.choices[0].finish_reason == "tool_calls"
    assert parsed.choices[0].message.tool_calls[0].id == streamed.choices[0].message.tool_calls[0].id


def test_forced_named_and_none_tool_choices(gateway_factory, configure, make_key):
    client = sdk_client(gateway_factory, configure, make_key)
    plain = [{"role": "user", "content": "Nothing named here"}]
    named = {"type": "function", "function": {"name": "get_time"}}
    required_call = ("call_45fe90e32c2a6c8027b8d769", "get_weather", '{"city":"Nothi","unit":"celsius"}')
    time_call = (WEATHER_CALL["id"], "get_time", '{"zone":"UTC"}')

    forced, forced_id = create(client, messages=plain, tools=TOOLS, tool_choice="required")
    chosen, chosen_id = create(client, messages=[ASK], tools=TOOLS, tool_choice=named)
    declined, declined_id = create(client, messages=[ASK], tools=TOOLS, tool_choice="none")
    auto, auto_id = create(client, messages=plain, tools=TOOLS)

    assert tool_calls_of(forced.choices[0].message) == [required_call]
    assert tool_calls_of(chosen.choices[0].message) == [time_call]
    assert [c.finish_reason for c in (forced.choices[0], chosen.choices[0])] == ["tool_calls", "tool_calls"]
    assert declined.choices[0].message.content == f"This is mock-echo. You said: {ASK['content']}"
    assert declined.choices[0].message.tool_calls is None
    assert auto.choices[0].message.content == "This is mock-echo. You said: Nothing named here"

    streamed = [
        create_streamed(client, messages=plain, tools=TOOLS, tool_choice="required"),
        create_streamed(client, messages=[ASK], tools=TOOLS, tool_choice=named),
        create_streamed(client, messages=[ASK], tools=TOOLS, tool_choice="none"),
    ]
    assert [list(s[0][0]["tool_calls"].values()) for s in streamed[:2]] == [
        [dict(zip(("id", "name", "arguments"), required_call, strict=True))],
        [dict(zip(("id", "name", "arguments"), time_call, strict=True))],
    ]
    assert streamed[2][0][0] == {
        "content": declined.choices[0].message.content,
        "tool_calls": {},
        "finish": "stop",
    }
    plain_prompt = TOOLS_PROMPT - 10 + 3  # "Nothing named here" is 3 tokens, the question 10
    expect_records(
        {
            forced_id: (plain_prompt, 17, 200),
            chosen_id: (TOOLS_PROMPT, 9, 200),
            declined_id: (TOOLS_PROMPT, 19, 200),
            auto_id: (plain_prompt, 12, 200),
            streamed[0][3]: (plain_prompt, 17, 200),
            streamed[1][3]: (TOOLS_PROMPT, 9, 200),
            streamed[2][3]: (TOOLS_PROMPT, 19, 200),
        }
    )


class Stop(BaseModel):
    name: str
    day: int


class Trip(BaseModel):
    city: str
    nights: int
    stops: list[Stop]


def test_structured_outputs(gateway_factory, configure, make_key):
    client = sdk_client(gateway_factory, configure, make_key)
    json_ask = [{"role": "user", "content": "Answer in JSON"}]
    json_reply = '{"message":"This is mock-echo. You said: Answer in JSON"}'

    schema, schema_id = create(client, messages=[TRIP], response_format=SCHEMA_FORMAT)
    parsed = client.chat.completions.parse(model="mock-echo", messages=[TRIP], response_format=Trip)
    plain, plain_id = create(client, messages=json_ask, response_format={"type": "json_object"})
    # The SDK's stream helper accumulates the chunks and parses the result into the model.
    with client.chat.completions.stream(model="mock-echo", messages=[TRIP], response_format=Trip) as helper:
        helped = helper.get_final_completion()
    streamed = create_streamed(client, messages=[TRIP], response_format=SCHEMA_FORMAT)
    streamed_json = create_streamed(client, messages=json_ask, response_format={"type": "json_object"})

    assert schema.choices[0].message.content == TRIP_JSON
    assert list(Draft202012Validator(PLAN).iter_errors(json.loads(TRIP_JSON))) == []
    # The SDK's own strict schema for Trip, filled and parsed back into the model.
    assert parsed.choices[0].message.parsed == Trip(
        city="Paris for 3 nights, stops on day 1 and 2", nights=3, stops=[Stop(name=TRIP["content"], day=1)]
    )
    assert helped.choices[0].message.parsed == parsed.choices[0].message.parsed
    assert plain.choices[0].message.content == json_reply
    assert streamed[0] == {0: {"content": TRIP_JSON, "tool_calls": {}, "finish": "stop"}}
    assert streamed_json[0] == {0: {"content": json_reply, "tool_calls": {}, "finish": "stop"}}
    assert (streamed[1].completion_tokens, streamed_json[1].completion_tokens) == (53, 20)
    wait_for(lambda: UsageRecord.objects.count() >= 6)
    records = tokens_by_request()
    assert records[schema_id] == records[streamed[3]] == (schema.usage.prompt_tokens, 53, 200)
    assert records[plain_id] == records[streamed_json[3]] == (20, 20, 200)
    assert UsageRecord.objects.count() == 6


def test_a_strict_schema_openai_refuses_is_a_400(gateway_factory, configure, make_key):
    client = sdk_client(gateway_factory, configure, make_key)
    loose = {
        "type": "json_schema",
        "json_schema": {"name": "trip", "schema": {"type": "object"}, "strict": True},
    }

    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="mock-echo", messages=[TRIP], response_format=loose, stream=True)

    assert caught.value.body == {
        "message": "Invalid schema for response_format 'trip': In context=(), 'additionalProperties' is "
        "required to be supplied and to be false.",
        "type": "invalid_request_error",
        "param": "response_format",
        "code": "invalid_json_schema",
    }
    # Refused before any token was produced: one record, with no tokens and no cost.
    expect_records({caught.value.response.headers["x-request-id"]: (0, 0, 400)})
    record = UsageRecord.objects.get()
    assert (record.error_type, record.cost_usd) == ("invalid_request_error", 0)


def test_n_choices(gateway_factory, configure, make_key):
    client = sdk_client(gateway_factory, configure, make_key)

    three, three_id = create(client, messages=HELLO, n=3)
    streamed = create_streamed(client, messages=HELLO, n=3)
    calls, calls_id = create(client, messages=[ASK], tools=TOOLS, n=3)

    echo = "This is mock-echo. You said: Hello there"
    assert [(c.index, c.message.content, c.finish_reason) for c in three.choices] == [
        (0, echo, "stop"),
        (1, echo, "stop"),
        (2, echo, "stop"),
    ]
    assert streamed[0] == {i: {"content": echo, "tool_calls": {}, "finish": "stop"} for i in range(3)}
    # three roles, 3 x 11 tokens, three finishes, the usage
    assert streamed[2] == 3 + 33 + 3 + 1
    assert [c.message.tool_calls[0].id for c in calls.choices] == [
        WEATHER_CALL["id"],
        "call_dbbf6ef470e0e4785abc36c9",
        "call_4d98e09ccc588175d3cbc87f",
    ]
    expect_records({three_id: (8, 33, 200), streamed[3]: (8, 33, 200), calls_id: (TOOLS_PROMPT, 3 * 17, 200)})
