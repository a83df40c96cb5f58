"""A ``POST /v1/responses`` body in, a checked ``CreateRequest`` out.

The body is parsed once, its sizes bounded like a chat body's, its fields validated (pydantic,
strict) and every field the gateway cannot honour refused with a 400 naming it: built-in tools,
``background``, ``conversation``, other tool choices, ``truncation: auto``, include values of
built-in tools or log probabilities, and any field OpenAI's create body does not define."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from gateway_site.api.errors import RequestError
from gateway_site.api.parse.bounds import (
    MAX_METADATA_KEY_CHARS,
    MAX_METADATA_PAIRS,
    MAX_METADATA_VALUE_CHARS,
    BodyBounds,
    check_length,
    check_maximum,
    check_string_length,
)
from gateway_site.api.parse.chat import Integer, JsonObject, load_json_object, validated

# Fields the gateway honours (or, for some values, refuses below).
SUPPORTED = frozenset(
    {
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "text",
        "max_output_tokens",
        "temperature",
        "top_p",
        "reasoning",
        "metadata",
        "user",
        "store",
        "previous_response_id",
        "stream",
        "stream_options",
        "include",
        "truncation",
        "prompt_cache_key",
        "safety_identifier",
        "background",
        "conversation",
    }
)
# Include values the gateway honours: input image URLs are kept in stored items; the translated
# path yields no reasoning items, so there is no encrypted reasoning content to include.
INCLUDABLE = frozenset({"message.input_image.image_url", "reasoning.encrypted_content"})
# Fields of OpenAI's create body the gateway refuses whenever they carry a value, and why.
REFUSED = {
    "service_tier": "the gateway serves the default tier only, at the prices it is configured with",
    "top_logprobs": "the gateway returns no log probabilities",
    "max_tool_calls": "it bounds built-in tools, which the gateway does not run",
    "prompt": "the gateway has no stored prompt templates",
    "moderation": "the gateway runs no moderation",
    "context_management": "the gateway manages no context",
    "prompt_cache_retention": "the gateway sets no prompt cache policy",
    "prompt_cache_options": "the gateway sets no prompt cache policy",
}


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


def _by_type(default: str, known: tuple[str, ...]) -> Discriminator:
    def kind(value: object) -> str:
        found = value.get("type", default) if isinstance(value, dict) else default
        return str(found) if found in known else "other"

    return Discriminator(kind)


class InputText(_Open):
    type: Literal["input_text"]
    text: str


class InputImage(_Open):
    type: Literal["input_image"]
    image_url: str | None = None
    file_id: str | None = None
    detail: Literal["low", "high", "auto", "original"] | None = None


class OutputText(_Open):
    type: Literal["output_text"]
    text: str


class RefusalPart(_Open):
    type: Literal["refusal"]
    refusal: str


class OtherPart(_Open):
    type: str


_PARTS = ("input_text", "input_image", "output_text", "refusal")
Part = Annotated[
    Annotated[InputText, Tag("input_text")]
    | Annotated[InputImage, Tag("input_image")]
    | Annotated[OutputText, Tag("output_text")]
    | Annotated[RefusalPart, Tag("refusal")]
    | Annotated[OtherPart, Tag("other")],
    _by_type("", _PARTS),
]


class MessageItem(_Open):
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[Part]


class FunctionCallItem(_Open):
    type: Literal["function_call"]
    call_id: Annotated[str, Field(min_length=1)]
    name: Annotated[str, Field(min_length=1)]
    arguments: str


class FunctionCallOutputItem(_Open):
    type: Literal["function_call_output"]
    call_id: Annotated[str, Field(min_length=1, max_length=64)]
    output: str | list[Part]


class OtherItem(_Open):
    type: str


_ITEMS = ("message", "function_call", "function_call_output")
Item = Annotated[
    Annotated[MessageItem, Tag("message")]
    | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output")]
    | Annotated[OtherItem, Tag("other")],
    _by_type("message", _ITEMS),
]


class FunctionTool(_Open):
    type: Literal["function"]
    name: Annotated[str, Field(min_length=1, max_length=64)]
    description: str | None = None
    parameters: JsonObject | None = None
    strict: bool | None = None


class OtherTool(_Open):
    type: str


Tool = Annotated[
    Annotated[FunctionTool, Tag("function")] | Annotated[OtherTool, Tag("other")],
    _by_type("", ("function",)),
]


class NamedFunction(_Open):
    type: Literal["function"]
    name: Annotated[str, Field(min_length=1)]


class OtherChoice(_Open):
    type: str


ToolChoice = Annotated[
    Annotated[NamedFunction, Tag("function")] | Annotated[OtherChoice, Tag("other")],
    _by_type("", ("function",)),
]


class FormatText(_Open):
    type: Literal["text"]


class FormatJsonObject(_Open):
    type: Literal["json_object"]


class FormatJsonSchema(_Open):
    type: Literal["json_schema"]
    name: Annotated[str, Field(min_length=1, max_length=64)]
    json_schema: JsonObject = Field(alias="schema")
    description: str | None = None
    strict: bool | None = None


Format = Annotated[
    Annotated[FormatText, Tag("text")]
    | Annotated[FormatJsonObject, Tag("json_object")]
    | Annotated[FormatJsonSchema, Tag("json_schema")],
    Discriminator(lambda value: value.get("type") if isinstance(value, dict) else None),
]


class TextParam(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    format: Format | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


Effort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]
Summary = Literal["auto", "concise", "detailed"]


class ReasoningParam(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    effort: Effort | None = None
    summary: Summary | None = None
    generate_summary: Summary | None = None
    mode: object = None
    context: object = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    include_obfuscation: bool | None = None


class CreateResponseBody(_Open):
    model: Annotated[str, Field(min_length=1, max_length=256)]
    input: str | list[Item]
    instructions: str | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    text: TextParam | None = None
    max_output_tokens: Annotated[Integer, Field(ge=16)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    reasoning: ReasoningParam | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None
    store: bool | None = None
    previous_response_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    include: list[str] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    prompt_cache_key: str | None = None
    safety_identifier: Annotated[str, Field(max_length=64)] | None = None
    background: bool | None = None
    conversation: object = None


@dataclass(frozen=True, slots=True)
class CreateRequest:
    """A checked create body. ``raw`` is the body as sent (for the fields the response object
    echoes); ``body`` its validated form."""

    raw: JsonObject
    body: CreateResponseBody

    @property
    def model(self) -> str:
        return self.body.model

    @property
    def stream(self) -> bool:
        return bool(self.body.stream)

    @property
    def store(self) -> bool:
        return self.body.store is not False


def unsupported(message: str, *, param: str) -> RequestError:
    return RequestError(message, param=param, code="unsupported_parameter")


def _refuse_fields(raw: JsonObject) -> None:
    """Every top-level field the gateway does not honour, before validation."""
    for name, value in raw.items():
        if name in SUPPORTED or (name in REFUSED and value is None):
            continue
        if name in REFUSED:
            raise unsupported(f"'{name}' is not supported: {REFUSED[name]}.", param=name)
        raise RequestError(f"Unrecognized request argument supplied: {name}", param=name)


def _check_sizes(raw: JsonObject, *, bounds: BodyBounds) -> None:
    items = raw.get("input")
    check_length(items, param="input", limit=bounds.messages)
    for index, item in enumerate(items if isinstance(items, list) else ()):
        for field in ("content", "output"):
            parts = item.get(field) if isinstance(item, dict) else None
            if isinstance(parts, list) and len(parts) > bounds.message_items:
                check_length(parts, param=f"input[{index}].{field}", limit=bounds.message_items)
    check_length(raw.get("tools"), param="tools", limit=bounds.tools)
    check_length(raw.get("include"), param="include", limit=len(INCLUDABLE) + 8)
    metadata = raw.get("metadata")
    check_length(metadata, param="metadata", limit=MAX_METADATA_PAIRS)
    for key, value in metadata.items() if isinstance(metadata, dict) else ():
        check_string_length(key, param="metadata", limit=MAX_METADATA_KEY_CHARS)
        check_string_length(value, param=f"metadata.{key}", limit=MAX_METADATA_VALUE_CHARS)


def _refuse_values(body: CreateResponseBody) -> None:
    """Values of supported fields the gateway cannot honour."""
    for index, tool in enumerate(body.tools or ()):
        if isinstance(tool, OtherTool):
            raise unsupported(
                f"Tools of type '{tool.type}' are not supported: the gateway runs no built-in tools; "
                "use function tools.",
                param=f"tools[{index}].type",
            )
    if isinstance(body.tool_choice, OtherChoice):
        raise unsupported(
            f"tool_choice of type '{body.tool_choice.type}' is not supported; use 'none', 'auto', "
            "'required' or a function.",
            param="tool_choice.type",
        )
    for index, value in enumerate(body.include or ()):
        if value not in INCLUDABLE:
            raise unsupported(f"include value '{value}' is not supported.", param=f"include[{index}]")
    if body.truncation == "auto":
        raise unsupported(
            "truncation 'auto' is not supported: the gateway does not know the model's context window.",
            param="truncation",
        )
    if body.background:
        raise unsupported("Background responses are not supported.", param="background")
    if body.conversation is not None:
        raise unsupported(
            "Conversations are not supported; continue with 'previous_response_id'.", param="conversation"
        )
    reasoning = body.reasoning
    for name in ("mode", "context"):
        if reasoning is not None and getattr(reasoning, name) is not None:
            raise unsupported(f"reasoning.{name} is not supported.", param=f"reasoning.{name}")


def parse_create_request(body: bytes, *, limit: int, bounds: BodyBounds | None = None) -> CreateRequest:
    """``bounds`` defaults to the settings' (README, "Request bounds")."""
    bounds = bounds or BodyBounds.from_settings()
    raw = load_json_object(body, limit=limit, bounds=bounds)
    _refuse_fields(raw)
    _check_sizes(raw, bounds=bounds)
    parsed = validated(CreateResponseBody, raw)
    check_maximum(parsed.max_output_tokens, param="max_output_tokens", limit=bounds.completion_tokens)
    _refuse_values(parsed)
    return CreateRequest(raw=raw, body=parsed)
