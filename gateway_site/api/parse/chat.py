"""Request bodies in, validated values out. The body is parsed once (orjson), its sizes bounded
(``body_bounds``), then checked against the fields OpenAI defines (pydantic, strict); unknown
fields are kept and forwarded upstream untouched. Anything wrong is a 400 with OpenAI's wording
and the offending ``param`` as the client wrote it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Literal, TypeVar

import orjson
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

from gateway_site.api.errors import PayloadTooLarge, RequestError
from gateway_site.api.parse.bounds import (
    MAX_LOGIT_BIAS_ENTRIES,
    MAX_METADATA_KEY_CHARS,
    MAX_METADATA_PAIRS,
    MAX_METADATA_VALUE_CHARS,
    MAX_STOP_SEQUENCES,
    BodyBounds,
    check_length,
    check_maximum,
    check_shape,
    check_string_length,
)
from gateway_site.api.parse.params import request_error
from providers.types import NativeRequest

JsonObject = dict[str, object]
M = TypeVar("M", bound=BaseModel)


def _integral(value: object) -> object:
    """A JSON number with an integral value (``2.0``) is the integer JSON Schema says it is."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# An integer parameter: strict (no strings, no booleans), but ``2.0`` counts as 2.
Integer = Annotated[int, BeforeValidator(_integral)]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


def _kind(value: object) -> str:
    """The tag of a tool or a tool call by its ``type``: a missing type means ``function`` (the
    only kind before ``custom``); a kind OpenAI does not define is forwarded for the upstream to
    judge."""
    kind = value.get("type", "function") if isinstance(value, dict) else "function"
    return f"type={kind if kind in ('function', 'custom') else 'other'}"


# Tags show in validation locations, so they are spelled unlike any body key.
FUNCTION, CUSTOM, OTHER = Tag("type=function"), Tag("type=custom"), Tag("type=other")
BY_KIND = Discriminator(_kind)


class FunctionCall(_Open):
    name: str
    arguments: str


class CustomCall(_Open):
    name: str
    input: str


class FunctionToolCall(_Open):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class CustomToolCall(_Open):
    id: str
    type: Literal["custom"]
    custom: CustomCall


class OtherToolCall(_Open):
    id: str
    type: str


ToolCall = Annotated[
    Annotated[FunctionToolCall, FUNCTION]
    | Annotated[CustomToolCall, CUSTOM]
    | Annotated[OtherToolCall, OTHER],
    BY_KIND,
]


class Message(_Open):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[JsonObject] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    function_call: FunctionCall | None = None
    audio: JsonObject | None = None

    @model_validator(mode="after")
    def _content_rules(self) -> Message:
        if self.role in ("system", "developer", "user") and self.content is None:
            raise ValueError(f"a '{self.role}' message needs 'content'")
        if self.role == "tool" and self.tool_call_id is None:
            raise ValueError("a 'tool' message needs 'tool_call_id'")
        if self.role == "assistant" and self.content is None and not self._answers():
            raise ValueError("an 'assistant' message needs 'content', 'tool_calls' or 'function_call'")
        return self

    def _answers(self) -> bool:
        """An assistant message says something: tool calls, a (deprecated) function call, or a
        reference to an earlier audio answer."""
        return bool(self.tool_calls) or self.function_call is not None or self.audio is not None


class StreamOptions(_Open):
    include_usage: bool | None = None


class FunctionDefinition(_Open):
    name: Annotated[str, Field(min_length=1, max_length=64)]


class CustomDefinition(_Open):
    name: Annotated[str, Field(min_length=1)]
    format: JsonObject | None = None


class FunctionTool(_Open):
    type: Literal["function"]
    function: FunctionDefinition


class CustomTool(_Open):
    type: Literal["custom"]
    custom: CustomDefinition


class OtherTool(_Open):
    type: str


Tool = Annotated[
    Annotated[FunctionTool, FUNCTION] | Annotated[CustomTool, CUSTOM] | Annotated[OtherTool, OTHER], BY_KIND
]


class ResponseFormat(_Open):
    type: Literal["text", "json_object", "json_schema"]


# The integer parameters of a chat request; a client's ``2.0`` reaches the upstream as ``2``.
CHAT_INTEGERS = ("n", "max_tokens", "max_completion_tokens", "seed", "top_logprobs")


class ChatCompletionBody(_Open):
    model: Annotated[str, Field(min_length=1, max_length=256)]
    messages: Annotated[list[Message], Field(min_length=1)]
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    n: Annotated[Integer, Field(ge=1, le=128)] | None = None
    max_tokens: Annotated[Integer, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[Integer, Field(ge=1)] | None = None
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    stop: str | list[str] | None = None
    seed: Annotated[Integer, Field(ge=-(2**63), le=2**63 - 1)] | None = None
    top_logprobs: Annotated[Integer, Field(ge=0, le=20)] | None = None
    logit_bias: dict[str, float] | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None
    tools: list[Tool] | None = None
    functions: list[FunctionDefinition] | None = None
    tool_choice: str | JsonObject | None = None
    response_format: ResponseFormat | None = None


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A validated chat request. ``raw`` is the body as the client sent it (unknown fields
    included), which is what adapters translate or forward. A dialect other than Chat
    Completions puts its translation in ``raw`` and the client's own request in ``native``;
    ``extra_prompt_bytes`` bounds what of its prompt the translation does not carry (for the
    cost reservation)."""

    model: str
    stream: bool
    include_usage: bool
    raw: JsonObject
    native: NativeRequest | None = None
    extra_prompt_bytes: int = 0


def load_json_object(body: bytes, *, limit: int, bounds: BodyBounds) -> JsonObject:
    """The body as a JSON object within ``bounds`` (nesting depth, string length)."""
    if len(body) > limit:
        raise PayloadTooLarge(f"The request body is {len(body)} bytes; the limit is {limit} bytes.")
    if not body:
        raise RequestError("The request body is empty; send a JSON object.")
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            raise RequestError(
                f"The request body is nested too deeply; the limit is {bounds.json_depth} levels.",
                code="nesting_above_max_depth",
            ) from None
        raise RequestError(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise RequestError("The request body must be a JSON object.")
    check_shape(parsed, body=body, bounds=bounds)
    return parsed


def validated(model: type[M], raw: JsonObject) -> M:
    """``raw`` validated as ``model``; a 400 naming the client's parameter otherwise."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise request_error(exc, raw) from None


def normalize_integers(raw: JsonObject, names: Iterable[str]) -> None:
    """Integral floats of validated integer parameters become integers in the forwarded body,
    so that every adapter (and the cache key) sees the same value for ``2`` and ``2.0``."""
    for name in names:
        value = raw.get(name)
        if isinstance(value, float):
            raw[name] = int(value)


def _check_message_sizes(messages: object, *, bounds: BodyBounds) -> None:
    check_length(messages, param="messages", limit=bounds.messages)
    limit = bounds.message_items
    for index, message in enumerate(messages if isinstance(messages, list) else ()):
        for field in ("content", "tool_calls"):
            # The parameter's name is spelled only for the one refused: this loop runs per message.
            items = message.get(field) if isinstance(message, dict) else None
            if isinstance(items, list) and len(items) > limit:
                check_length(items, param=f"messages[{index}].{field}", limit=limit)


def _check_metadata(metadata: object) -> None:
    check_length(metadata, param="metadata", limit=MAX_METADATA_PAIRS)
    for key, value in metadata.items() if isinstance(metadata, dict) else ():
        check_string_length(key, param="metadata", limit=MAX_METADATA_KEY_CHARS)
        check_string_length(value, param=f"metadata.{key}", limit=MAX_METADATA_VALUE_CHARS)


def _check_chat_sizes(raw: JsonObject, *, bounds: BodyBounds) -> None:
    """Every count a chat body controls, before the body is validated item by item."""
    _check_message_sizes(raw.get("messages"), bounds=bounds)
    check_length(raw.get("tools"), param="tools", limit=bounds.tools)
    check_length(raw.get("functions"), param="functions", limit=bounds.tools)
    check_length(raw.get("stop"), param="stop", limit=MAX_STOP_SEQUENCES)
    check_length(raw.get("logit_bias"), param="logit_bias", limit=MAX_LOGIT_BIAS_ENTRIES)
    _check_metadata(raw.get("metadata"))


def parse_chat_request(body: bytes, *, limit: int, bounds: BodyBounds | None = None) -> ChatRequest:
    """``bounds`` defaults to the settings' (docs/api.md, "Request bounds")."""
    bounds = bounds or BodyBounds.from_settings()
    raw = load_json_object(body, limit=limit, bounds=bounds)
    _check_chat_sizes(raw, bounds=bounds)
    parsed = validated(ChatCompletionBody, raw)
    for name in ("max_tokens", "max_completion_tokens"):
        check_maximum(getattr(parsed, name), param=name, limit=bounds.completion_tokens)
    normalize_integers(raw, CHAT_INTEGERS)
    stream = bool(parsed.stream)
    if parsed.stream_options is not None and not stream:
        raise RequestError("'stream_options' is only allowed when 'stream' is true.", param="stream_options")
    include_usage = bool(parsed.stream_options and parsed.stream_options.include_usage)
    return ChatRequest(model=parsed.model, stream=stream, include_usage=include_usage, raw=raw)


def message_texts(raw: dict[str, object]) -> list[str]:
    messages = raw.get("messages")
    texts: list[str] = []
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p)
    return texts
