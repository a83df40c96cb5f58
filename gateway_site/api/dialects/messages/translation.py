"""A Messages API request as the gateway's internal request (an OpenAI chat body), for the
deployments that do not speak the Messages API (an Anthropic deployment gets the client's own
request). What the chat body cannot carry is either a documented loss (``cache_control``,
``thinking`` and thinking blocks, ``output_config.effort``, ``context_management``,
``service_tier``, ``is_error``, citations) or named in ``untranslatable``: such a request is
refused before it is sent to a translating deployment (docs/messages-api.md). No Django here."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson

JsonObject = dict[str, object]

# Top-level fields the translation carries, or whose loss is documented; any other field (``top_k``,
# a beta feature's) is untranslatable. ``context_management`` asks Anthropic to clear old thinking
# or tool results from the context: without it the model sees the whole conversation, which
# Claude Code (which always sends it) works with.
_CARRIED = frozenset(
    {
        "model",
        "max_tokens",
        "messages",
        "system",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "tools",
        "tool_choice",
        "thinking",
        "metadata",
        "service_tier",
        "context_management",
        "output_config",
    }
)
_TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}


@dataclass(frozen=True, slots=True)
class Translation:
    """The chat body; the parameters it could not carry (each as the client wrote its path);
    the UTF-8 bytes of prompt text it leaves out (thinking blocks), for the cost bound."""

    body: JsonObject
    untranslatable: tuple[str, ...]
    uncarried_bytes: int


@dataclass(slots=True)
class _Losses:
    params: list[str] = field(default_factory=list)
    uncarried_bytes: int = 0


def chat_body(raw: JsonObject) -> Translation:
    """``raw``, a validated Messages body (or a ``count_tokens`` body), as a chat body."""
    losses = _Losses()
    messages = raw.get("messages")
    body: JsonObject = {
        "model": raw["model"],
        "messages": [*_system(raw.get("system")), *_conversation(_objects(messages), losses)],
    }
    if raw.get("max_tokens") is not None:
        body["max_tokens"] = raw["max_tokens"]
    if raw.get("stream") is True:
        body["stream"] = True
    for name in ("temperature", "top_p"):
        if raw.get(name) is not None:
            body[name] = raw[name]
    if raw.get("stop_sequences"):
        body["stop"] = raw["stop_sequences"]
    body.update(_tools(raw, losses))
    body.update(_output(raw.get("output_config"), losses))
    metadata = raw.get("metadata")
    user = metadata.get("user_id") if isinstance(metadata, dict) else None
    if isinstance(user, str) and user:
        body["user"] = user
    losses.params.extend(name for name in raw if name not in _CARRIED)
    return Translation(body=body, untranslatable=tuple(losses.params), uncarried_bytes=losses.uncarried_bytes)


def _objects(value: object) -> list[JsonObject]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _system(system: object) -> list[JsonObject]:
    if isinstance(system, str):
        return [{"role": "system", "content": system}] if system else []
    parts = [{"type": "text", "text": block.get("text", "")} for block in _objects(system)]
    return [{"role": "system", "content": parts}] if parts else []


def _conversation(messages: list[JsonObject], losses: _Losses) -> list[JsonObject]:
    out: list[JsonObject] = []
    for index, message in enumerate(messages):
        content = message.get("content")
        where = f"messages[{index}].content"
        role = message.get("role")
        if role == "assistant":
            blocks: list[JsonObject] = (
                [{"type": "text", "text": content}] if isinstance(content, str) else _objects(content)
            )
            out.append(_assistant(blocks, where=where, losses=losses))
        elif isinstance(content, str):
            out.append({"role": role, "content": content})
        elif role == "system":
            out.append({"role": "system", "content": _parts(_objects(content), at=where, losses=losses)})
        else:
            out.extend(_user(_objects(content), where=where, losses=losses))
    return out


def _user(blocks: list[JsonObject], *, where: str, losses: _Losses) -> list[JsonObject]:
    """Tool results become ``tool`` messages, which must follow the assistant's tool calls; the
    rest of the turn is one user message after them."""
    results: list[JsonObject] = []
    parts: list[JsonObject] = []
    for index, block in enumerate(blocks):
        kind, at = block.get("type"), f"{where}[{index}]"
        if kind == "tool_result":
            results.append(_tool_message(block, at=at, losses=losses))
        elif kind in ("text", "image", "document"):
            parts.extend(_parts([block], at=at, losses=losses, single=True))
        else:
            losses.params.append(f"{at}.type")
    return results + ([{"role": "user", "content": parts}] if parts else [])


def _parts(
    blocks: Iterable[JsonObject], *, at: str, losses: _Losses, single: bool = False
) -> list[JsonObject]:
    """Content blocks as chat content parts. ``at`` is the path of the one block (``single``)
    or of the list that holds them."""
    parts: list[JsonObject] = []
    for index, block in enumerate(blocks):
        path = at if single else f"{at}[{index}]"
        kind = block.get("type")
        if kind == "text":
            parts.append({"type": "text", "text": block.get("text", "")})
        elif kind == "image":
            parts.extend(_image(block.get("source"), at=path, losses=losses))
        elif kind == "document":
            parts.extend(_document(block, at=path, losses=losses))
        else:
            losses.params.append(f"{path}.type")
    return parts


def _image(source: object, *, at: str, losses: _Losses) -> list[JsonObject]:
    source = source if isinstance(source, dict) else {}
    if source.get("type") == "base64":
        url = f"data:{source.get('media_type')};base64,{source.get('data')}"
    elif source.get("type") == "url":
        url = str(source.get("url"))
    else:
        losses.params.append(f"{at}.source")
        return []
    return [{"type": "image_url", "image_url": {"url": url}}]


def _document(block: JsonObject, *, at: str, losses: _Losses) -> list[JsonObject]:
    """A PDF becomes a ``file`` part, plain text a text part, a document made of content blocks
    those blocks; a document by URL or file id is not fetched."""
    source = block.get("source")
    source = source if isinstance(source, dict) else {}
    kind = source.get("type")
    if kind == "base64" and source.get("media_type") == "application/pdf":
        title = block.get("title")
        name = f"{title}.pdf" if isinstance(title, str) and title else "document.pdf"
        data = f"data:application/pdf;base64,{source.get('data')}"
        return [{"type": "file", "file": {"filename": name, "file_data": data}}]
    if kind == "text" and isinstance(source.get("data"), str):
        return [{"type": "text", "text": source["data"]}]
    if kind == "content":
        content = source.get("content")
        if isinstance(content, str):
            return [{"type": "text", "text": content}]
        return _parts(_objects(content), at=f"{at}.source.content", losses=losses)
    losses.params.append(f"{at}.source")
    return []


def _tool_message(block: JsonObject, *, at: str, losses: _Losses) -> JsonObject:
    """A tool result as a ``tool`` message: its text (text blocks joined by newlines); chat
    tool messages take no images."""
    content = block.get("content")
    if isinstance(content, list):
        texts = []
        for index, item in enumerate(_objects(content)):
            if item.get("type") == "text":
                texts.append(str(item.get("text", "")))
            else:
                losses.params.append(f"{at}.content[{index}].type")
        content = "\n".join(texts)
    return {"role": "tool", "tool_call_id": block.get("tool_use_id", ""), "content": content or ""}


def _assistant(blocks: list[JsonObject], *, where: str, losses: _Losses) -> JsonObject:
    """Text blocks joined, tool uses as tool calls; thinking blocks have no chat form (their
    text is counted for the cost bound)."""
    texts: list[str] = []
    calls: list[JsonObject] = []
    for index, block in enumerate(blocks):
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input", {})).decode()
            function = {"name": block.get("name", ""), "arguments": arguments}
            calls.append({"id": block.get("id", ""), "type": "function", "function": function})
        elif kind in ("thinking", "redacted_thinking"):
            losses.uncarried_bytes += len(str(block.get("thinking") or block.get("data") or "").encode())
        else:
            losses.params.append(f"{where}[{index}].type")
    message: JsonObject = {"role": "assistant", "content": "".join(texts)}
    if calls:
        message["tool_calls"] = calls
    return message


def _output(config: object, losses: _Losses) -> JsonObject:
    """A JSON schema the answer must follow becomes ``response_format``; the effort asked for
    is a documented loss (chat models have no one setting for it)."""
    if not isinstance(config, dict):
        return {}
    losses.params.extend(f"output_config.{name}" for name in config if name not in ("effort", "format"))
    fmt = config.get("format")
    if fmt is None:
        return {}
    if (
        not isinstance(fmt, dict)
        or fmt.get("type") != "json_schema"
        or not isinstance(fmt.get("schema"), dict)
    ):
        losses.params.append("output_config.format")
        return {}
    return {
        "response_format": {"type": "json_schema", "json_schema": {"name": "output", "schema": fmt["schema"]}}
    }


def _tools(raw: JsonObject, losses: _Losses) -> JsonObject:
    functions: list[JsonObject] = []
    for index, tool in enumerate(_objects(raw.get("tools"))):
        if tool.get("type", "custom") != "custom":
            losses.params.append(f"tools[{index}].type")
            continue
        function: JsonObject = {"name": tool.get("name"), "parameters": tool.get("input_schema")}
        if isinstance(tool.get("description"), str):
            function["description"] = tool["description"]
        if isinstance(tool.get("strict"), bool):
            function["strict"] = tool["strict"]
        functions.append({"type": "function", "function": function})
    if not functions:
        return {}
    out: JsonObject = {"tools": functions}
    choice = raw.get("tool_choice")
    if isinstance(choice, dict):
        kind = choice.get("type")
        if kind == "tool":
            out["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
        elif isinstance(kind, str) and kind in _TOOL_CHOICES:
            out["tool_choice"] = _TOOL_CHOICES[kind]
        if choice.get("disable_parallel_tool_use") is True:
            out["parallel_tool_calls"] = False
    return out
