"""Input items: the client's ``input`` normalised to the items the API lists back (each with an
``id`` and a ``status``), and a conversation of items as chat messages for the internal request.

Messages (``input_text`` / ``input_image`` parts, or a string), assistant messages
(``output_text`` / ``refusal`` parts), ``function_call`` and ``function_call_output`` items are
honoured; any other item or part (reasoning items, item references, files, audio, built-in tool
calls) is refused with a 400 naming it."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from gateway_site.api.dialects.responses.create import (
    CreateRequest,
    FunctionCallItem,
    FunctionCallOutputItem,
    InputImage,
    InputText,
    MessageItem,
    OtherItem,
    OutputText,
    Part,
    RefusalPart,
    unsupported,
)
from gateway_site.api.errors import RequestError
from gateway_site.api.parse.chat import JsonObject


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}"


def input_items(request: CreateRequest) -> list[JsonObject]:
    """The request's ``input`` as listed items: a string is one user message."""
    given = request.body.input
    if isinstance(given, str):
        return [_message("user", [{"type": "input_text", "text": given}], item_id=None)]
    items: list[JsonObject] = []
    for index, item in enumerate(given):
        raw = request.raw["input"][index]  # type: ignore[index]
        item_id = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
        items.append(_item(item, index=index, item_id=item_id))
    return items


def _item(
    item: MessageItem | FunctionCallItem | FunctionCallOutputItem | OtherItem,
    *,
    index: int,
    item_id: str | None,
) -> JsonObject:
    if isinstance(item, MessageItem):
        return _message(item.role, _parts(item, index=index), item_id=item_id)
    if isinstance(item, FunctionCallItem):
        return {
            "id": item_id or new_id("fc"),
            "type": "function_call",
            "call_id": item.call_id,
            "name": item.name,
            "arguments": item.arguments,
            "status": "completed",
        }
    if isinstance(item, FunctionCallOutputItem):
        output: str | list[JsonObject] = (
            item.output
            if isinstance(item.output, str)
            else _input_parts(item.output, f"input[{index}].output")
        )
        return {
            "id": item_id or new_id("fco"),
            "type": "function_call_output",
            "call_id": item.call_id,
            "output": output,
            "status": "completed",
        }
    raise unsupported(
        f"Input items of type '{item.type}' are not supported; send messages, function calls and "
        "function call outputs.",
        param=f"input[{index}].type",
    )


def _message(role: str, content: list[JsonObject], *, item_id: str | None) -> JsonObject:
    return {
        "id": item_id or new_id("msg"),
        "type": "message",
        "role": role,
        "status": "completed",
        "content": content,
    }


def _parts(item: MessageItem, *, index: int) -> list[JsonObject]:
    where = f"input[{index}].content"
    if item.role == "assistant":
        if isinstance(item.content, str):
            return [_output_text(item.content)]
        return [_assistant_part(part, param=f"{where}[{j}]") for j, part in enumerate(item.content)]
    if isinstance(item.content, str):
        return [{"type": "input_text", "text": item.content}]
    return _input_parts(item.content, where)


def _output_text(text: str) -> JsonObject:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _assistant_part(part: Part, *, param: str) -> JsonObject:
    if isinstance(part, OutputText | InputText):
        return _output_text(part.text)
    if isinstance(part, RefusalPart):
        return {"type": "refusal", "refusal": part.refusal}
    raise unsupported(f"An assistant message cannot hold '{part.type}' parts.", param=f"{param}.type")


def _input_parts(parts: Sequence[Part], where: str) -> list[JsonObject]:
    out: list[JsonObject] = []
    for j, part in enumerate(parts):
        if isinstance(part, InputText):
            out.append({"type": "input_text", "text": part.text})
        elif isinstance(part, InputImage):
            out.append(_image(part, param=f"{where}[{j}]"))
        else:
            raise unsupported(
                f"Content parts of type '{part.type}' are not supported here; send input_text and "
                "input_image parts.",
                param=f"{where}[{j}].type",
            )
    return out


def _image(part: InputImage, *, param: str) -> JsonObject:
    if part.file_id is not None or not part.image_url:
        raise unsupported(
            "Images must be given as 'image_url' (a URL or a base64 data URL); the gateway has no files.",
            param=f"{param}.image_url",
        )
    return {
        "type": "input_image",
        "image_url": part.image_url,
        "detail": part.detail or "auto",
        "file_id": None,
    }


def chat_messages(items: Sequence[JsonObject]) -> list[JsonObject]:
    """Listed items as chat messages: a function call joins the assistant message before it (or
    starts one), its output is a ``tool`` message."""
    messages: list[JsonObject] = []
    for item in items:
        kind = item.get("type")
        if kind == "function_call":
            call = {
                "id": item["call_id"],
                "type": "function",
                "function": {"name": item["name"], "arguments": item["arguments"]},
            }
            last = messages[-1] if messages else None
            calls = last.get("tool_calls") if last is not None and last.get("role") == "assistant" else None
            if isinstance(calls, list):
                calls.append(call)
            elif last is not None and last.get("role") == "assistant":
                last["tool_calls"] = [call]
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item["output"]
            content = output if isinstance(output, str) else _text_parts(output)
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": content})
        else:
            messages.append(_chat_message(item))
    return messages


def _text_parts(parts: object) -> list[JsonObject]:
    listed = parts if isinstance(parts, list) else []
    if any(isinstance(p, dict) and p.get("type") != "input_text" for p in listed):
        raise unsupported("A function call output can only hold text parts here.", param="input")
    return [{"type": "text", "text": p["text"]} for p in listed]


def _chat_message(item: JsonObject) -> JsonObject:
    role = str(item["role"])
    content = item["content"]
    parts = content if isinstance(content, list) else []
    if role == "assistant":
        text = "".join(str(p["text"]) for p in parts if p.get("type") == "output_text")
        refusals = [str(p["refusal"]) for p in parts if p.get("type") == "refusal"]
        message: JsonObject = {"role": "assistant", "content": text}
        if refusals:
            message["refusal"] = "".join(refusals)
        return message
    chat_parts = [_chat_part(p) for p in parts]
    if len(chat_parts) == 1 and chat_parts[0]["type"] == "text":
        return {"role": role, "content": chat_parts[0]["text"]}
    return {"role": role, "content": chat_parts}


def _chat_part(part: JsonObject) -> JsonObject:
    if part["type"] == "input_text":
        return {"type": "text", "text": part["text"]}
    image: JsonObject = {"url": part["image_url"]}
    if part.get("detail") in ("low", "high", "auto"):
        image["detail"] = part["detail"]
    return {"type": "image_url", "image_url": image}


def item_page(items: Sequence[JsonObject], *, after: str | None, limit: int, order: str) -> JsonObject:
    """One page of a stored response's input items, as the API lists them: ``order`` ``asc``
    (as given) or ``desc``, starting after the item ``after`` (a 400 when there is none)."""
    ordered = list(items) if order == "asc" else list(reversed(items))
    start = 0
    if after is not None:
        ids = [item.get("id") for item in ordered]
        if after not in ids:
            raise RequestError(f"No input item with id '{after}' in this response.", param="after")
        start = ids.index(after) + 1
    page = ordered[start : start + limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": start + limit < len(ordered),
    }
