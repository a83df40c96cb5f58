"""Which tools the mock provider calls, and the 400s for a tool choice OpenAI would refuse."""

from __future__ import annotations

import pytest

from providers.errors import UnsupportedRequest
from providers.vendors.mock.tools import Tool, Toolset, call_id, no_parameters, tools_to_call, toolset


def function(name: str, **extra: object) -> dict[str, object]:
    return {"type": "function", "function": {"name": name, "parameters": {"type": "object"}, **extra}}


TOOLS = [function("get_weather"), function("get_time"), function("send-mail")]


def body(**fields: object) -> dict[str, object]:
    return {"model": "mock-echo", "messages": [{"role": "user", "content": "hi"}], "tools": TOOLS, **fields}


def names(found: Toolset, said: str) -> list[str]:
    return [tool.name for tool in tools_to_call(found, said=said)]


def test_auto_calls_the_tools_the_message_names_in_the_order_it_names_them():
    found = toolset(body())
    assert found.choice == "auto" and found.parallel and not found.legacy
    assert found.tools[0] == Tool(
        name="get_weather", parameters={"type": "object"}, param="tools.0.function.parameters"
    )
    assert names(found, "First SEND-MAIL, then get_time; get_time again") == ["send-mail", "get_time"]


def test_auto_without_a_named_tool_calls_none():
    assert names(toolset(body()), "What is the weather, get weather please (get_weathers)") == []


def test_none_never_calls():
    assert names(toolset(body(tool_choice="none")), "get_weather now") == []


def test_required_calls_the_named_tools_or_else_the_first():
    found = toolset(body(tool_choice="required"))
    assert names(found, "get_time and get_weather") == ["get_time", "get_weather"]
    assert names(found, "anything") == ["get_weather"]


def test_a_named_function_is_called_alone_whatever_the_message_names():
    found = toolset(body(tool_choice={"type": "function", "function": {"name": "get_time"}}))
    assert found.choice == "function:get_time"
    assert names(found, "get_weather and send-mail") == ["get_time"]


def test_parallel_tool_calls_false_calls_the_first_named_only():
    assert names(toolset(body(parallel_tool_calls=False)), "get_time and get_weather") == ["get_time"]


def test_legacy_functions_call_one_function():
    legacy = {
        "model": "mock-echo",
        "messages": [{"role": "user", "content": "hi"}],
        "functions": [{"name": "lookup", "parameters": {"type": "object"}}, {"name": "other"}],
    }
    found = toolset(legacy)
    assert found == Toolset(
        tools=(
            Tool(name="lookup", parameters={"type": "object"}, param="functions.0.parameters"),
            Tool(name="other", parameters=no_parameters(), param="functions.1.parameters"),
        ),
        choice="auto",
        parallel=False,
        legacy=True,
    )
    assert names(found, "other and lookup") == ["other"]
    assert names(toolset({**legacy, "function_call": {"name": "lookup"}}), "other") == ["lookup"]
    assert names(toolset({**legacy, "function_call": "none"}), "other") == []


@pytest.mark.parametrize(
    ("fields", "param", "message"),
    [
        (
            {"tools": None, "tool_choice": "required"},
            "tool_choice",
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when tools are specified.",
        ),
        (
            {"tool_choice": {"type": "function", "function": {"name": "nope"}}},
            "tool_choice",
            "Invalid value for 'tool_choice': no function named 'nope' was given.",
        ),
        (
            {"tool_choice": "sometimes"},
            "tool_choice",
            "Invalid value for 'tool_choice': 'sometimes' is not one of 'none', 'auto', 'required'.",
        ),
        (
            {"tools": [{"type": "custom", "custom": {"name": "x"}}]},
            "tools.0.type",
            "Only function tools are supported by the mock provider.",
        ),
    ],
    ids=["required without tools", "unknown function", "unknown choice", "custom tool"],
)
def test_choices_openai_refuses_are_a_400(fields, param, message):
    with pytest.raises(UnsupportedRequest) as caught:
        toolset(body(**fields))
    assert (caught.value.status, caught.value.param, caught.value.message) == (400, param, message)


def test_a_strict_tool_schema_is_held_to_openais_rules():
    loose = function("get_weather", strict=True)
    with pytest.raises(UnsupportedRequest) as caught:
        toolset(body(tools=[function("get_time"), loose]))
    assert caught.value.param == "tools.1.function.parameters"
    assert caught.value.code == "invalid_function_parameters"
    assert caught.value.message == (
        "Invalid schema for function 'get_weather': In context=(), 'additionalProperties' is required "
        "to be supplied and to be false."
    )


def test_call_ids_are_stable_per_seed_choice_and_position_and_differ_across_them():
    assert call_id("seed", choice=0, position=0) == "call_2eed09ba68770ffdeee9e87b"
    ids = {call_id(seed, choice=c, position=p) for seed in ("a", "b") for c in range(3) for p in range(3)}
    assert len(ids) == 18
