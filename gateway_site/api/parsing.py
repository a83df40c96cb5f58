"""Request bodies in, validated values out. The body is parsed once (orjson) and checked
against the fields OpenAI defines (pydantic, strict); unknown fields are kept and forwarded
upstream untouched. Anything wrong is a 400 with OpenAI's wording and the offending ``param``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gateway_site.api.errors import PayloadTooLarge, RequestError

JsonObject = dict[str, object]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class FunctionCall(_Open):
    name: str
    arguments: str


class ToolCall(_Open):
    id: str
    type: str = "function"
    function: FunctionCall


class Message(_Open):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[JsonObject] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def _content_rules(self) -> Message:
        if self.role in ("system", "developer", "user") and self.content is None:
            raise ValueError(f"a '{self.role}' message needs 'content'")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a 'tool' message needs 'tool_call_id'")
        if self.role == "assistant" and self.content is None and not self.tool_calls:
            raise ValueError("an 'assistant' message needs 'content' or 'tool_calls'")
        return self


class StreamOptions(_Open):
    include_usage: bool | None = None


class FunctionDefinition(_Open):
    name: Annotated[str, Field(min_length=1, max_length=64)]


class Tool(_Open):
    type: str
    function: FunctionDefinition | None = None


class ResponseFormat(_Open):
    type: Literal["text", "json_object", "json_schema"]


class ChatCompletionBody(_Open):
    model: Annotated[str, Field(min_length=1, max_length=256)]
    messages: Annotated[list[Message], Field(min_length=1)]
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    n: Annotated[int, Field(ge=1, le=128)] | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    stop: str | Annotated[list[str], Field(max_length=4)] | None = None
    seed: int | None = None
    user: str | None = None
    tools: list[Tool] | None = None
    tool_choice: str | JsonObject | None = None
    response_format: ResponseFormat | None = None


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A validated chat request. ``raw`` is the body as the client sent it (unknown fields
    included), which is what adapters translate or forward."""

    model: str
    stream: bool
    include_usage: bool
    raw: JsonObject


def load_json_object(body: bytes, *, limit: int) -> JsonObject:
    if len(body) > limit:
        raise PayloadTooLarge(f"The request body is {len(body)} bytes; the limit is {limit} bytes.")
    if not body:
        raise RequestError("The request body is empty; send a JSON object.")
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise RequestError("The request body must be a JSON object.")
    return parsed


def _validation_error(exc: ValidationError) -> RequestError:
    first = exc.errors(include_url=False)[0]
    location = [str(part) for part in first["loc"] if not str(part).startswith(("function-", "union["))]
    param = ".".join(location) or None
    if first["type"] == "missing":
        return RequestError(f"Missing required parameter: '{param}'.", param=param)
    reason = str(first["msg"]).removeprefix("Value error, ")
    where = f" for '{param}'" if param else ""
    return RequestError(f"Invalid value{where}: {reason}.", param=param)


def parse_chat_request(body: bytes, *, limit: int) -> ChatRequest:
    raw = load_json_object(body, limit=limit)
    try:
        parsed = ChatCompletionBody.model_validate(raw)
    except ValidationError as exc:
        raise _validation_error(exc) from None
    stream = bool(parsed.stream)
    if parsed.stream_options is not None and not stream:
        raise RequestError("'stream_options' is only allowed when 'stream' is true.", param="stream_options")
    include_usage = bool(parsed.stream_options and parsed.stream_options.include_usage)
    return ChatRequest(model=parsed.model, stream=stream, include_usage=include_usage, raw=raw)
