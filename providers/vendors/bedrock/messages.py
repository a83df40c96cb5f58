"""A Messages API request (``NativeRequest``) as a Bedrock ``Converse`` body, for the clients of
the gateway's ``/v1/messages``: Converse was modelled on the Messages API, so blocks map one to
one, and for Anthropic's models on Bedrock what Converse carries of extended thinking and
prompt caching is kept: ``thinking`` (and ``top_k``) in ``additionalModelRequestFields``,
signed thinking blocks as ``reasoningContent``, each ``cache_control`` as a ``cachePoint`` after
its block. Other models get the same translation without those (thinking is dropped, ``top_k``
refused). What Converse cannot carry is refused naming the parameter; what it loses is
documented (docs/messages-api.md)."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import orjson

from providers.errors import UnsupportedRequest
from providers.translation.upstream import JsonObject

_IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/gif": "gif", "image/webp": "webp"}
# Fields Converse has no place for: ``model`` is in the URL, ``stream`` is the operation, the rest
# are documented losses.
_LOSSES = frozenset({"service_tier", "context_management", "metadata", "stream", "model"})
_HANDLED = frozenset(
    {"max_tokens", "messages", "system", "stop_sequences", "temperature", "top_p", "top_k"}
    | {"tools", "tool_choice", "thinking", "output_config"}
)
CACHE_POINT: JsonObject = {"cachePoint": {"type": "default"}}


def anthropic_model(model_id: str) -> bool:
    """A Claude model id, inference profile (``us.anthropic.claude-…``) or ARN naming one."""
    return "anthropic." in model_id


@dataclass(frozen=True, slots=True)
class _Target:
    claude: bool  # the deployment serves an Anthropic model: thinking and cache points kept


def converse_from_messages(body: JsonObject, *, model_id: str) -> JsonObject:
    target = _Target(claude=anthropic_model(model_id))
    unknown = [name for name in body if name not in _HANDLED | _LOSSES]
    if unknown:
        raise UnsupportedRequest(
            f"'{unknown[0]}' is not supported by the bedrock provider.", param=unknown[0]
        )
    system, messages = _conversation(body, target)
    payload: JsonObject = {"messages": messages, "inferenceConfig": _inference(body)}
    if system:
        payload["system"] = system
    tools = _tool_config(body, target)
    if tools:
        payload["toolConfig"] = tools
    extra = _model_fields(body, target)
    if extra:
        payload["additionalModelRequestFields"] = extra
    output = _output_config(body.get("output_config"))
    if output:
        payload["outputConfig"] = output
    return payload


def _objects(value: object) -> list[JsonObject]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _text_blocks(content: object, target: _Target) -> list[JsonObject]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    out: list[JsonObject] = []
    for block in _objects(content):
        out.append({"text": str(block.get("text", ""))})
        out.extend(_cache_point(block, target))
    return out


def _cache_point(block: JsonObject, target: _Target) -> list[JsonObject]:
    return [dict(CACHE_POINT)] if target.claude and block.get("cache_control") else []


def _conversation(body: JsonObject, target: _Target) -> tuple[list[JsonObject], list[JsonObject]]:
    """System blocks (``system``, then any ``system`` turns: Converse has them only up front)
    and the turns, same-role neighbours merged (Converse wants them alternating)."""
    system = _text_blocks(body.get("system"), target)
    turns: list[JsonObject] = []
    for index, message in enumerate(_objects(body.get("messages"))):
        role, content = message.get("role"), message.get("content")
        if role == "system":
            system.extend(_text_blocks(content, target))
            continue
        blocks: list[JsonObject] = (
            [{"type": "text", "text": content}] if isinstance(content, str) else _objects(content)
        )
        converted = _blocks(blocks, where=f"messages[{index}].content", target=target)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(converted)  # type: ignore[attr-defined]
        else:
            turns.append({"role": role, "content": converted})
    return system, turns


def _blocks(blocks: list[JsonObject], *, where: str, target: _Target) -> list[JsonObject]:
    out: list[JsonObject] = []
    for index, block in enumerate(blocks):
        at = f"{where}[{index}]"
        converted = _block(block, at=at, target=target)
        if converted is not None:
            out.append(converted)
            out.extend(_cache_point(block, target))
    return out


def _block(block: JsonObject, *, at: str, target: _Target) -> JsonObject | None:
    """One content block; None for what is dropped (thinking for a model that has none)."""
    kind = block.get("type")
    if kind == "text":
        return {"text": str(block.get("text", ""))}
    if kind == "image":
        return {"image": _image(block.get("source"), at=at)}
    if kind == "document":
        return {"document": _document(block, at=at)}
    if kind == "tool_use":
        use = {
            "toolUseId": block.get("id", ""),
            "name": block.get("name", ""),
            "input": block.get("input", {}),
        }
        return {"toolUse": use}
    if kind == "tool_result":
        return {"toolResult": _tool_result(block, at=at)}
    if kind in ("thinking", "redacted_thinking"):
        return _reasoning(block) if target.claude else None
    raise UnsupportedRequest(
        f"Content blocks of type '{kind}' are not supported by the bedrock provider.", param=f"{at}.type"
    )


def _image(source: object, *, at: str) -> JsonObject:
    source = source if isinstance(source, dict) else {}
    image_format = _IMAGE_FORMATS.get(str(source.get("media_type")))
    if source.get("type") != "base64" or image_format is None:
        raise UnsupportedRequest(
            "The bedrock provider takes images as base64 PNG, JPEG, GIF or WebP; "
            "the gateway does not fetch URLs.",
            param=f"{at}.source",
        )
    return {"format": image_format, "source": {"bytes": source.get("data", "")}}


def _document(block: JsonObject, *, at: str) -> JsonObject:
    source = block.get("source")
    source = source if isinstance(source, dict) else {}
    title = block.get("title")
    name = title if isinstance(title, str) and title else "document"
    if source.get("type") == "base64" and source.get("media_type") == "application/pdf":
        return {"format": "pdf", "name": name, "source": {"bytes": source.get("data", "")}}
    if source.get("type") == "text" and isinstance(source.get("data"), str):
        data = base64.b64encode(source["data"].encode()).decode()
        return {"format": "txt", "name": name, "source": {"bytes": data}}
    raise UnsupportedRequest(
        "The bedrock provider takes documents as base64 PDFs or plain text.", param=f"{at}.source"
    )


def _tool_result(block: JsonObject, *, at: str) -> JsonObject:
    content = block.get("content")
    items: list[JsonObject] = []
    if isinstance(content, str):
        items.append({"text": content or " "})  # Converse refuses an empty text block
    for index, item in enumerate(_objects(content)):
        if item.get("type") == "text":
            items.append({"text": str(item.get("text", "")) or " "})
        elif item.get("type") == "image":
            items.append({"image": _image(item.get("source"), at=f"{at}.content[{index}]")})
        else:
            raise UnsupportedRequest(
                "A tool result holds text and images on the bedrock provider.",
                param=f"{at}.content[{index}].type",
            )
    status = "error" if block.get("is_error") is True else "success"
    return {"toolUseId": block.get("tool_use_id", ""), "content": items or [{"text": " "}], "status": status}


def _reasoning(block: JsonObject) -> JsonObject:
    if block.get("type") == "redacted_thinking":
        return {"reasoningContent": {"redactedContent": block.get("data", "")}}
    text = {"text": block.get("thinking", ""), "signature": block.get("signature", "")}
    return {"reasoningContent": {"reasoningText": text}}


def _inference(body: JsonObject) -> JsonObject:
    config: JsonObject = {"maxTokens": body.get("max_tokens")}
    for source, target in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("stop_sequences", "stopSequences"),
    ):
        if body.get(source) is not None:
            config[target] = body[source]
    return config


def _tool_config(body: JsonObject, target: _Target) -> JsonObject:
    tools: list[JsonObject] = []
    for index, tool in enumerate(_objects(body.get("tools"))):
        if tool.get("type", "custom") != "custom":
            raise UnsupportedRequest(
                "Only custom tools are supported by the bedrock provider.", param=f"tools[{index}].type"
            )
        spec: JsonObject = {"name": tool.get("name"), "inputSchema": {"json": tool.get("input_schema")}}
        if isinstance(tool.get("description"), str):
            spec["description"] = tool["description"]
        tools.append({"toolSpec": spec})
        tools.extend(_cache_point(tool, target))
    if not tools:
        return {}
    config: JsonObject = {"tools": tools}
    choice = body.get("tool_choice")
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind in ("auto", "any"):
        config["toolChoice"] = {str(kind): {}}
    elif kind == "tool" and isinstance(choice, dict):
        config["toolChoice"] = {"tool": {"name": choice.get("name")}}
    return config  # "none" has no Converse form: the tools stay, no choice is forced


def _model_fields(body: JsonObject, target: _Target) -> JsonObject:
    """Anthropic's own request fields, which Bedrock passes to Claude."""
    fields: JsonObject = {}
    top_k = body.get("top_k")
    if top_k is not None:
        if not target.claude:
            raise UnsupportedRequest("'top_k' is not supported by this bedrock model.", param="top_k")
        fields["top_k"] = top_k
    thinking = body.get("thinking")
    if target.claude and isinstance(thinking, dict) and thinking.get("type") != "disabled":
        fields["thinking"] = thinking
    return fields


def _output_config(config: object) -> JsonObject:
    fmt = config.get("format") if isinstance(config, dict) else None
    if not isinstance(fmt, dict):
        return {}
    if fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
        raise UnsupportedRequest("output_config.format takes a JSON schema.", param="output_config.format")
    schema: JsonObject = {"schema": orjson.dumps(fmt["schema"]).decode(), "name": "output"}
    return {"textFormat": {"type": "json_schema", "structure": {"jsonSchema": schema}}}
