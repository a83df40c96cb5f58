"""A Responses request as the gateway's internal request: an OpenAI chat body, which the
provider adapters translate for every kind. Built from scratch from the checked fields, so
nothing the Responses API means differently (``store``, ``metadata``, ``include``) reaches an
upstream.

``instructions`` become a leading ``system`` message (not carried over by
``previous_response_id``); ``max_output_tokens`` is ``max_completion_tokens``; ``text.format``
is ``response_format``; ``text.verbosity`` is ``verbosity`` and ``reasoning.effort`` is
``reasoning_effort`` (kinds that have neither drop them: see docs/responses-api.md)."""

from __future__ import annotations

from collections.abc import Sequence

from gateway_site.api.dialects.responses.create import (
    CreateRequest,
    CreateResponseBody,
    FormatJsonObject,
    FormatJsonSchema,
    FunctionTool,
    NamedFunction,
)
from gateway_site.api.dialects.responses.items import chat_messages
from gateway_site.api.errors import RequestError
from gateway_site.api.parse.chat import JsonObject

# Fields passed on under the same name.
_SAME = ("temperature", "top_p", "user", "prompt_cache_key", "safety_identifier")


def chat_body(request: CreateRequest, *, conversation: Sequence[JsonObject]) -> JsonObject:
    """The internal request for ``conversation`` (the stored history, then this request's input
    items) with the request's parameters."""
    body = request.body
    messages = chat_messages(conversation)
    if not any(m.get("role") != "system" and m.get("role") != "developer" for m in messages):
        raise RequestError("'input' holds no message to answer.", param="input")
    if body.instructions:
        messages.insert(0, {"role": "system", "content": body.instructions})
    chat: JsonObject = {"model": body.model, "messages": messages}
    if body.stream:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    if body.max_output_tokens is not None:
        chat["max_completion_tokens"] = body.max_output_tokens
    for name in _SAME:
        value = getattr(body, name)
        if value is not None:
            chat[name] = value
    chat.update(_tools(body))
    chat.update(_text(body))
    if body.reasoning is not None and body.reasoning.effort is not None:
        chat["reasoning_effort"] = body.reasoning.effort
    return chat


def _tools(body: CreateResponseBody) -> JsonObject:
    tools = [_function(tool) for tool in body.tools or () if isinstance(tool, FunctionTool)]
    out: JsonObject = {}
    if tools:
        out["tools"] = tools
        if body.parallel_tool_calls is not None:
            out["parallel_tool_calls"] = body.parallel_tool_calls
    choice = body.tool_choice
    if isinstance(choice, NamedFunction):
        if choice.name not in {tool["function"]["name"] for tool in tools}:  # type: ignore[index]
            raise RequestError(
                f"tool_choice names the function '{choice.name}', which is not in 'tools'.",
                param="tool_choice.name",
            )
        out["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
    elif choice == "required" and not tools:
        raise RequestError("tool_choice 'required' needs function tools in 'tools'.", param="tool_choice")
    elif isinstance(choice, str) and tools:
        out["tool_choice"] = choice
    return out


def _function(tool: FunctionTool) -> JsonObject:
    function: JsonObject = {"name": tool.name}
    if tool.description is not None:
        function["description"] = tool.description
    if tool.parameters is not None:
        function["parameters"] = tool.parameters
    if tool.strict is not None:
        function["strict"] = tool.strict
    return {"type": "function", "function": function}


def _text(body: CreateResponseBody) -> JsonObject:
    text = body.text
    if text is None:
        return {}
    out: JsonObject = {}
    if text.verbosity is not None:
        out["verbosity"] = text.verbosity
    fmt = text.format
    if isinstance(fmt, FormatJsonObject):
        out["response_format"] = {"type": "json_object"}
    elif isinstance(fmt, FormatJsonSchema):
        spec: JsonObject = {"name": fmt.name, "schema": fmt.json_schema}
        if fmt.description is not None:
            spec["description"] = fmt.description
        if fmt.strict is not None:
            spec["strict"] = fmt.strict
        out["response_format"] = {"type": "json_schema", "json_schema": spec}
    return out


# Internal parameter names, as the client wrote them in the Responses request: a provider's
# refusal of a translated parameter names the client's.
RESPONSES_PARAMS = {
    "response_format": "text.format",
    "max_completion_tokens": "max_output_tokens",
    "max_tokens": "max_output_tokens",
    "reasoning_effort": "reasoning.effort",
    "verbosity": "text.verbosity",
    "messages": "input",
}


def responses_param(param: str | None) -> str | None:
    """``param`` of an error about the internal request, in the Responses request's terms."""
    if param is None:
        return None
    head, dot, rest = param.partition(".")
    head = head.split("[")[0]
    mapped = RESPONSES_PARAMS.get(head)
    if mapped is None:
        return param
    if head in ("response_format", "messages"):
        return mapped
    return mapped + (dot + rest if rest else "")
