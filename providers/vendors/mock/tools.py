"""Which tools the mock provider calls. ``tool_choice: "none"`` never calls one; a named
function is always called, alone; otherwise the tools the last user message names (a word equal
to the tool's name, any case) are called in the order it names them, the first only when
``parallel_tool_calls`` is false (at most ``MAX_CALLS``), and ``"required"`` falls back to the
first tool. The legacy ``functions`` / ``function_call`` work the same way, one call at a time.

A tool's ``strict: true`` schema is held to OpenAI's strict rules (``providers.vendors.mock.strict``)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from providers.errors import UnsupportedRequest
from providers.translation.chat_request import FunctionTool, function_tools, tool_choice
from providers.translation.upstream import JsonObject
from providers.vendors.mock.strict import strict_violation

_WORD = re.compile(r"[\w-]+")
MAX_CALLS = 128  # per choice; OpenAI takes at most 128 tools in a request


@dataclass(frozen=True, slots=True)
class Tool:
    """A callable function: its name, its parameters' schema, and where that schema sits in
    the request (the ``param`` of a 400 about it)."""

    name: str
    parameters: JsonObject
    param: str


@dataclass(frozen=True, slots=True)
class Toolset:
    """The request's tools and how they may be called. ``choice`` is ``auto``, ``none``,
    ``required`` or ``function:<name>``; ``legacy`` marks ``functions`` / ``function_call``."""

    tools: tuple[Tool, ...] = ()
    choice: str = "auto"
    parallel: bool = True
    legacy: bool = False


def toolset(body: JsonObject) -> Toolset:
    """The request's tools; a 400 for a choice that names no tool or a strict schema that
    OpenAI would refuse."""
    if "functions" in body and "tools" not in body:
        found = _legacy_toolset(body)
    else:
        tools = tuple(
            _tool(f, param=f"tools.{i}.function.parameters") for i, f in enumerate(_functions(body))
        )
        found = Toolset(
            tools=tools,
            choice=tool_choice(body) or "auto",
            parallel=body.get("parallel_tool_calls") is not False,
        )
    _check_choice(found, param="function_call" if found.legacy else "tool_choice")
    return found


def _functions(body: JsonObject) -> list[FunctionTool]:
    tools = function_tools(body, provider="mock")
    for index, tool in enumerate(tools):
        violation = strict_violation(tool.parameters or {}) if tool.strict else None
        if violation is not None:
            raise UnsupportedRequest(
                f"Invalid schema for function '{tool.name}': {violation}",
                param=f"tools.{index}.function.parameters",
                code="invalid_function_parameters",
            )
    return tools


def _tool(function: FunctionTool, *, param: str) -> Tool:
    return Tool(name=function.name, parameters=function.parameters or no_parameters(), param=param)


def no_parameters() -> JsonObject:
    """The schema of a function declared without parameters: its arguments are ``{}``."""
    return {"type": "object", "properties": {}}


def _legacy_toolset(body: JsonObject) -> Toolset:
    raw = body.get("functions")
    tools: list[Tool] = []
    for index, function in enumerate(raw if isinstance(raw, list) else []):
        parameters = function.get("parameters") if isinstance(function, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or not name:
            raise UnsupportedRequest("Each function needs a 'name'.", param=f"functions.{index}.name")
        tools.append(
            Tool(
                name=name,
                parameters=parameters if isinstance(parameters, dict) and parameters else no_parameters(),
                param=f"functions.{index}.parameters",
            )
        )
    call = body.get("function_call")
    named = call.get("name") if isinstance(call, dict) else None
    choice = f"function:{named}" if isinstance(named, str) else call if isinstance(call, str) else "auto"
    return Toolset(tools=tuple(tools), choice=choice, parallel=False, legacy=True)


def _check_choice(found: Toolset, *, param: str) -> None:
    if found.choice in ("auto", "none"):
        return
    if not found.tools:
        raise UnsupportedRequest(
            f"Invalid value for '{param}': '{param}' is only allowed when tools are specified.",
            param=param,
            code="invalid_value",
        )
    name = found.choice.removeprefix("function:")
    if found.choice.startswith("function:") and all(tool.name != name for tool in found.tools):
        raise UnsupportedRequest(
            f"Invalid value for '{param}': no function named '{name[:64]}' was given.",
            param=param,
            code="invalid_value",
        )
    if not found.choice.startswith("function:") and found.choice != "required":
        raise UnsupportedRequest(
            f"Invalid value for '{param}': '{found.choice[:64]}' is not one of 'none', 'auto', 'required'.",
            param=param,
            code="invalid_value",
        )


def tools_to_call(found: Toolset, *, said: str) -> list[Tool]:
    """The tools to call in answer to the last user message ``said``, in call order."""
    if found.choice == "none" or not found.tools:
        return []
    if found.choice.startswith("function:"):
        name = found.choice.removeprefix("function:")
        return [next(tool for tool in found.tools if tool.name == name)]
    named = mentioned(found.tools, text=said)
    if not named and found.choice == "required":
        named = [found.tools[0]]
    return named[:MAX_CALLS] if found.parallel else named[:1]


def mentioned(tools: tuple[Tool, ...], *, text: str) -> list[Tool]:
    """The tools ``text`` names, in the order it first names them (each once)."""
    first: dict[str, int] = {}
    for position, word in enumerate(_WORD.findall(text.lower())):
        first.setdefault(word, position)
    unique = {tool.name.lower(): tool for tool in reversed(tools)}
    return sorted(
        (tool for key, tool in unique.items() if key in first), key=lambda tool: first[tool.name.lower()]
    )


def call_id(seed: str, *, choice: int, position: int) -> str:
    """A tool call's id: the same for the same conversation, choice and position, so a
    repeated request (streamed or not) gets the same ids, and different across them."""
    digest = hashlib.sha256(f"{seed}:{choice}:{position}".encode()).hexdigest()
    return f"call_{digest[:24]}"
