"""Reading an OpenAI chat request for translation into another vendor's format: the pieces
every translating adapter needs (system text, content parts, images, tool calls, limits), and
the 400s for what a provider cannot honour. The body was validated at the edge; what is
checked here is what only matters when translating."""

from __future__ import annotations

import binascii
import re
from base64 import b64decode
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from providers.errors import UnsupportedRequest
from providers.translation.upstream import JsonObject
from providers.translation.vendor_json import parse_or_none

_DATA_URL = re.compile(r"data:(?P<mime>[\w.+-]+/[\w.+-]+)(?P<params>(;[^;,]*)*?);base64,(?P<data>.*)", re.S)


@dataclass(frozen=True, slots=True)
class Image:
    """An ``image_url`` part: inline (``data`` is base64, ``mime`` from the data URL) or by URL."""

    url: str = ""
    mime: str = ""
    data: str = ""

    @property
    def inline(self) -> bool:
        return bool(self.data)


def messages(body: JsonObject) -> list[JsonObject]:
    raw = body.get("messages")
    return [m for m in raw if isinstance(m, dict)] if isinstance(raw, list) else []


def is_system(message: JsonObject) -> bool:
    return message.get("role") in ("system", "developer")


Turn = Callable[[JsonObject], tuple[str, list[JsonObject]]]


def turns(body: JsonObject, turn: Turn, *, blocks_key: str) -> list[JsonObject]:
    """The non-system messages as vendor turns ``{"role": ..., blocks_key: [...]}``, each made by
    ``turn`` (in order), same-role neighbours merged into one turn: the vendors want the roles
    to alternate, and tool results become user turns next to the user's own."""
    merged: list[tuple[str, list[JsonObject]]] = []
    for message in messages(body):
        if is_system(message):
            continue
        role, blocks = turn(message)
        if merged and merged[-1][0] == role:
            merged[-1][1].extend(blocks)
        else:
            merged.append((role, list(blocks)))
    return [{"role": role, blocks_key: blocks} for role, blocks in merged]


def system_texts(body: JsonObject) -> list[str]:
    """The text of every system / developer message, in order."""
    return [text_of(m.get("content")) for m in messages(body) if is_system(m)]


def text_of(content: object) -> str:
    """A string content, or its text parts joined (for roles that only take text)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") in ("text", "refusal")
        )
    return ""


def parts(content: object, *, provider: str) -> Iterator[str | Image]:
    """A user message's content as text and images; audio, files and unknown parts are refused."""
    if isinstance(content, str):
        yield content
        return
    for index, part in enumerate(content if isinstance(content, list) else []):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part, dict):
            yield str(part.get("text", ""))
        elif kind == "image_url" and isinstance(part, dict):
            yield image(part.get("image_url"), provider=provider)
        else:
            raise UnsupportedRequest(
                f"Content parts of type '{kind}' are not supported by the {provider} provider.",
                param=f"messages.content.{index}.type",
            )


def image(spec: object, *, provider: str) -> Image:
    url = spec.get("url") if isinstance(spec, dict) else spec
    if not isinstance(url, str) or not url:
        raise UnsupportedRequest("An image_url part needs a 'url'.", param="messages.content.image_url")
    if url.startswith(("http://", "https://")):
        return Image(url=url)
    match = _DATA_URL.fullmatch(url)
    if match is None:
        raise UnsupportedRequest(
            f"The {provider} provider takes images as http(s) URLs or base64 data URLs "
            "(data:image/png;base64,...).",
            param="messages.content.image_url",
        )
    try:
        b64decode(match["data"], validate=True)
    except binascii.Error:
        raise UnsupportedRequest(
            "The image data URL is not valid base64.", param="messages.content.image_url"
        ) from None
    return Image(mime=match["mime"].lower(), data=match["data"])


@dataclass(frozen=True, slots=True)
class ToolCallIn:
    id: str
    name: str
    arguments: JsonObject


def tool_calls(message: JsonObject) -> list[ToolCallIn]:
    """An assistant message's tool calls with their arguments parsed (``{}`` when empty)."""
    calls: list[ToolCallIn] = []
    raw = message.get("tool_calls")
    for call in raw if isinstance(raw, list) else []:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(call, dict) or not isinstance(function, dict):
            continue
        calls.append(
            ToolCallIn(
                id=str(call.get("id", "")),
                name=str(function.get("name", "")),
                arguments=parse_arguments(function.get("arguments")),
            )
        )
    return calls


def parse_arguments(arguments: object) -> JsonObject:
    if arguments in (None, ""):
        return {}
    parsed = parse_or_none(str(arguments))
    if not isinstance(parsed, dict):
        raise UnsupportedRequest(
            "Tool call arguments must be a JSON object encoded as a string.",
            param="messages.tool_calls.function.arguments",
        )
    return parsed


@dataclass(frozen=True, slots=True)
class FunctionTool:
    name: str
    description: str | None
    parameters: JsonObject | None
    strict: bool | None


def function_tools(body: JsonObject, *, provider: str) -> list[FunctionTool]:
    raw = body.get("tools")
    tools: list[FunctionTool] = []
    for index, tool in enumerate(raw if isinstance(raw, list) else []):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(function, dict):
            raise UnsupportedRequest(
                f"Only function tools are supported by the {provider} provider.", param=f"tools.{index}.type"
            )
        parameters = function.get("parameters")
        description = function.get("description")
        strict = function.get("strict")
        tools.append(
            FunctionTool(
                name=str(function.get("name", "")),
                description=description if isinstance(description, str) else None,
                parameters=parameters if isinstance(parameters, dict) else None,
                strict=strict if isinstance(strict, bool) else None,
            )
        )
    return tools


def tool_choice(body: JsonObject) -> str | None:
    """``auto`` / ``none`` / ``required``, or the forced function's name prefixed ``function:``."""
    choice = body.get("tool_choice")
    if choice is None or isinstance(choice, str):
        return choice
    function = choice.get("function") if isinstance(choice, dict) else None
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(function, dict):
        return f"function:{function.get('name', '')}"
    raise UnsupportedRequest("This form of 'tool_choice' is not supported.", param="tool_choice")


def max_output_tokens(body: JsonObject) -> int | None:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def stop_sequences(body: JsonObject) -> list[str] | None:
    stop = body.get("stop")
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list):
        return [str(s) for s in stop]
    return None


def number(body: JsonObject, name: str) -> float | None:
    value = body.get(name)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def refuse_multiple_choices(body: JsonObject, *, provider: str) -> None:
    n = body.get("n")
    if isinstance(n, int) and n > 1:
        raise UnsupportedRequest(
            f"The {provider} provider returns one choice per request; 'n' must be 1.", param="n"
        )


def refuse_logprobs(body: JsonObject, *, provider: str) -> None:
    if body.get("logprobs") is True or body.get("top_logprobs") is not None:
        raise UnsupportedRequest(
            f"The {provider} provider does not return log probabilities.", param="logprobs"
        )


def response_format(body: JsonObject) -> tuple[str, JsonObject | None]:
    """``("text", None)``, ``("json_object", None)`` or ``("json_schema", the json_schema object)``."""
    fmt = body.get("response_format")
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if not isinstance(fmt, dict) or kind in (None, "text"):
        return "text", None
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
            raise UnsupportedRequest(
                "response_format json_schema needs 'json_schema.schema', a JSON Schema object.",
                param="response_format.json_schema.schema",
            )
        return "json_schema", spec
    return str(kind), None
