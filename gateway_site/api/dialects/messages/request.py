"""A Messages API request body in, the gateway's internal request out. The body is parsed once
(orjson) and its sizes bounded as a chat body's are, then checked against the fields Anthropic
defines (pydantic, strict); fields the gateway does not know are kept, so an Anthropic
deployment receives them as sent. The internal request is its translation
(``translation.chat_body``) with the client's own request beside it (``NativeRequest``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from gateway_site.api.dialects.messages.translation import chat_body
from gateway_site.api.errors import RequestError
from gateway_site.api.parse.bounds import BodyBounds, check_length, check_maximum
from gateway_site.api.parse.chat import (
    ChatRequest,
    Integer,
    JsonObject,
    load_json_object,
    normalize_integers,
    validated,
)
from providers.types import ANTHROPIC_MESSAGES, NativeRequest

# The client headers an Anthropic deployment receives (beta features it opts into).
NATIVE_HEADERS = ("anthropic-beta",)
_INTEGERS = ("max_tokens", "top_k")


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


def _tag(value: object) -> str:
    """A block, source or tool by its ``type``; a type this gateway does not model is kept for an
    Anthropic upstream to judge (its translation refuses it)."""
    kind = value.get("type") if isinstance(value, dict) else None
    return f"type={kind}" if kind in _KNOWN else "type=other"


_KNOWN = frozenset(
    {"text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking", "base64", "url"}
)
BY_TYPE = Discriminator(_tag)


class CacheControl(_Open):
    type: str


class TextBlock(_Open):
    type: Literal["text"]
    text: str
    cache_control: CacheControl | None = None


class Base64Source(_Open):
    type: Literal["base64"]
    media_type: str
    data: str


class UrlSource(_Open):
    type: Literal["url"]
    url: Annotated[str, Field(min_length=1)]


class OtherSource(_Open):
    type: str


Source = Annotated[
    Annotated[Base64Source, Tag("type=base64")]
    | Annotated[UrlSource, Tag("type=url")]
    | Annotated[OtherSource, Tag("type=other")],
    BY_TYPE,
]


class ImageBlock(_Open):
    type: Literal["image"]
    source: Source


class DocumentBlock(_Open):
    type: Literal["document"]
    source: JsonObject
    title: str | None = None


class ToolUseBlock(_Open):
    type: Literal["tool_use"]
    id: str
    name: str
    input: JsonObject


class ToolResultBlock(_Open):
    type: Literal["tool_result"]
    tool_use_id: str
    content: str | list[JsonObject] | None = None
    is_error: bool | None = None


class ThinkingBlock(_Open):
    type: Literal["thinking"]
    thinking: str
    signature: str


class RedactedThinkingBlock(_Open):
    type: Literal["redacted_thinking"]
    data: str


class OtherBlock(_Open):
    type: str


Block = Annotated[
    Annotated[TextBlock, Tag("type=text")]
    | Annotated[ImageBlock, Tag("type=image")]
    | Annotated[DocumentBlock, Tag("type=document")]
    | Annotated[ToolUseBlock, Tag("type=tool_use")]
    | Annotated[ToolResultBlock, Tag("type=tool_result")]
    | Annotated[ThinkingBlock, Tag("type=thinking")]
    | Annotated[RedactedThinkingBlock, Tag("type=redacted_thinking")]
    | Annotated[OtherBlock, Tag("type=other")],
    BY_TYPE,
]


class Message(_Open):
    """``system`` messages inside the conversation are what Claude Code sends to the newest
    models (instructions added mid-session)."""

    role: Literal["user", "assistant", "system"]
    content: str | list[Block]


def _tool_tag(value: object) -> str:
    kind = value.get("type", "custom") if isinstance(value, dict) else "custom"
    return "type=custom" if kind == "custom" else "type=other"


class CustomTool(_Open):
    type: Literal["custom"] = "custom"
    name: Annotated[str, Field(min_length=1, max_length=128)]
    description: str | None = None
    input_schema: JsonObject


class ServerTool(_Open):
    """A tool Anthropic runs or defines itself (``bash_20250124``, ``web_search_20250305``)."""

    type: str
    name: str


Tool = Annotated[
    Annotated[CustomTool, Tag("type=custom")] | Annotated[ServerTool, Tag("type=other")],
    Discriminator(_tool_tag),
]


class ToolChoice(_Open):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None

    @model_validator(mode="after")
    def _named(self) -> ToolChoice:
        if self.type == "tool" and not self.name:
            raise ValueError("a 'tool' choice needs the tool's 'name'")
        return self


class Thinking(_Open):
    type: str
    budget_tokens: Annotated[Integer, Field(ge=1024)] | None = None

    @model_validator(mode="after")
    def _budget(self) -> Thinking:
        if self.type == "enabled" and self.budget_tokens is None:
            raise ValueError("enabled thinking needs 'budget_tokens'")
        return self


class OutputConfig(_Open):
    effort: str | None = None
    format: JsonObject | None = None


class Metadata(_Open):
    user_id: Annotated[str, Field(max_length=256)] | None = None


class CountTokensBody(_Open):
    """What ``/v1/messages/count_tokens`` takes: a message request without its output limit."""

    model: Annotated[str, Field(min_length=1, max_length=256)]
    messages: Annotated[list[Message], Field(min_length=1)]
    system: str | list[TextBlock] | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = None


class MessagesBody(CountTokensBody):
    max_tokens: Annotated[Integer, Field(ge=1)]
    stream: bool | None = None
    stop_sequences: list[str] | None = None
    temperature: Annotated[float, Field(ge=0, le=1)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    top_k: Annotated[Integer, Field(ge=0)] | None = None
    metadata: Metadata | None = None
    service_tier: str | None = None
    output_config: OutputConfig | None = None


def _check_sizes(raw: JsonObject, *, bounds: BodyBounds) -> None:
    """Every count a Messages body controls, before it is validated item by item."""
    messages = raw.get("messages")
    check_length(messages, param="messages", limit=bounds.messages)
    for index, message in enumerate(messages if isinstance(messages, list) else ()):
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list) and len(content) > bounds.message_items:
            check_length(content, param=f"messages[{index}].content", limit=bounds.message_items)
    check_length(raw.get("system"), param="system", limit=bounds.message_items)
    check_length(raw.get("tools"), param="tools", limit=bounds.tools)
    check_length(raw.get("stop_sequences"), param="stop_sequences", limit=bounds.message_items)


def parse_messages_request(
    body: bytes,
    *,
    limit: int,
    headers: Mapping[str, str],
    count_only: bool = False,
    bounds: BodyBounds | None = None,
) -> ChatRequest:
    """A ``/v1/messages`` body (``count_only``: a ``count_tokens`` body) as the internal request;
    ``headers`` are the client's, of which the ``NATIVE_HEADERS`` go with the native request.
    ``bounds`` defaults to the settings' (docs/api.md, "Request bounds")."""
    bounds = bounds or BodyBounds.from_settings()
    raw = load_json_object(body, limit=limit, bounds=bounds)
    _check_sizes(raw, bounds=bounds)
    parsed = validated(CountTokensBody if count_only else MessagesBody, raw)
    check_maximum(raw.get("max_tokens"), param="max_tokens", limit=bounds.completion_tokens)
    normalize_integers(raw, _INTEGERS)
    if raw.get("stream") is True and count_only:
        raise RequestError("'stream' is not a parameter of token counting.", param="stream")
    translation = chat_body(raw)
    native = NativeRequest(
        dialect=ANTHROPIC_MESSAGES,
        body=raw,
        content=body,
        headers=tuple((name, headers[name]) for name in NATIVE_HEADERS if headers.get(name)),
        untranslatable=translation.untranslatable,
    )
    return ChatRequest(
        model=parsed.model,
        stream=raw.get("stream") is True,
        include_usage=False,
        raw=translation.body,
        native=native,
        extra_prompt_bytes=translation.uncarried_bytes,
    )
