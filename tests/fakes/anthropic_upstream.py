"""A fake Anthropic Messages API (docs/providers.md, "anthropic") on 127.0.0.1: it checks the ``x-api-key``
(401 ``authentication_error`` when wrong) and the ``anthropic-version`` header, validates the
body strictly (unknown fields, roles, block types, image and document sources, tool_use /
tool_result pairing, thinking blocks and their signatures, ``thinking`` budgets,
``cache_control``, ``max_tokens``, temperature range, ``context_management`` only with its beta
header) and answers with a message, or with SSE events when the body says ``stream: true``;
``/v1/messages/count_tokens`` answers ``token_count``. A scripted error's ``{key}`` is
replaced by the key the request presented (``KEY_ECHO``)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.server import FakeServer, Invalid, RecordedRequest, echoed, require

MESSAGE_ID = "msg_01FakeAnthropic"
_TOP_LEVEL = {
    "model", "max_tokens", "messages", "system", "temperature", "top_p", "top_k", "stop_sequences",
    "stream", "metadata", "tools", "tool_choice", "thinking", "output_config", "service_tier",
    "context_management",
}  # fmt: skip
_COUNT_FIELDS = {"model", "messages", "system", "tools", "tool_choice", "thinking", "context_management"}
_MEDIA = {"image/jpeg", "image/png", "image/gif", "image/webp"}
CONTEXT_MANAGEMENT_BETA = "context-management-2025-06-27"


@dataclass(frozen=True)
class ToolUse:
    id: str
    name: str
    input: dict[str, Any]


@dataclass(frozen=True)
class AnthropicReply:
    text: str = "Hello from Claude!"
    tool_uses: tuple[ToolUse, ...] = ()
    thinking: str = ""  # a thinking block first, signed with ``signature``
    signature: str = "sig-fake-0001"
    stop_reason: str | None = None
    stop_sequence: str | None = None
    input_tokens: int = 21
    output_tokens: int = 5
    cache_read: int = 0
    cache_creation: int = 0
    delay: float = 0.0  # seconds before answering
    event_delay: float = 0.0  # streamed: seconds between events
    fail_after: int | None = None  # streamed: an ``error`` event after this many deltas
    error_message: str = "Overloaded"  # that event's message

    def stop(self) -> str:
        return self.stop_reason or ("tool_use" if self.tool_uses else "end_turn")


@dataclass(frozen=True)
class AnthropicError:
    status: int
    type: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)


Behaviour = AnthropicReply | AnthropicError


class FakeAnthropicUpstream(FakeServer[Behaviour]):
    name = "anthropic"

    def __init__(self, *, api_key: str = "sk-ant-fake", version: str = "2023-06-01") -> None:
        super().__init__(AnthropicReply())
        self.api_key = api_key
        self.version = version
        self.token_count = 42  # what count_tokens answers

    async def answer(self, request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        route = (recorded.method, recorded.path)
        require(
            route in (("POST", "/v1/messages"), ("POST", "/v1/messages/count_tokens")), f"no route {route}"
        )
        if recorded.headers.get("x-api-key") != self.api_key:
            return _error(AnthropicError(401, "authentication_error", "invalid x-api-key"))
        require(
            recorded.headers.get("anthropic-version") == self.version, "anthropic-version: wrong or missing"
        )
        require(recorded.headers.get("content-type") == "application/json", "content-type must be JSON")
        body = recorded.body
        betas = {b.strip() for b in recorded.headers.get("anthropic-beta", "").split(",")}
        if recorded.path.endswith("/count_tokens"):
            extra = set(body) - _COUNT_FIELDS if isinstance(body, dict) else set()
            require(not extra, f"{sorted(extra)}: Extra inputs are not permitted")
            validate({**body, "max_tokens": 1}, betas=betas)
            return web.json_response({"input_tokens": self.token_count})
        validate(body, betas=betas)
        behaviour = self.next_behaviour()
        if isinstance(behaviour, AnthropicError):
            return _error(echoed(behaviour, self.api_key, "type", "message", "headers"))
        if isinstance(behaviour, AnthropicReply) and behaviour.delay:
            await asyncio.sleep(behaviour.delay)
        if body.get("stream") is True:
            return await _stream(request, echoed(behaviour, self.api_key, "error_message"), body["model"])
        return web.json_response(_message(behaviour, body["model"]))

    def invalid(self, message: str) -> web.StreamResponse:
        return _error(AnthropicError(400, "invalid_request_error", message))


def validate(body: Any, *, betas: frozenset[str] | set[str] = frozenset()) -> None:
    require(isinstance(body, dict), "body must be a JSON object")
    extra = set(body) - _TOP_LEVEL
    require(not extra, f"{sorted(extra)}: Extra inputs are not permitted")
    require(
        "context_management" not in body or CONTEXT_MANAGEMENT_BETA in betas,
        f"context_management: requires the {CONTEXT_MANAGEMENT_BETA} beta",
    )
    require(isinstance(body.get("model"), str) and body["model"], "model: Field required")
    require(isinstance(body.get("max_tokens"), int) and body["max_tokens"] >= 1, "max_tokens: Field required")
    require(0 <= body.get("temperature", 0) <= 1, "temperature: must be between 0 and 1")
    _thinking(body.get("thinking"), max_tokens=body["max_tokens"], betas=betas)
    output = body.get("output_config", {})
    require(set(output) <= {"effort", "format"}, "output_config: effort and format only")
    system = body.get("system", "")
    require(
        isinstance(system, str) or all(b.get("type") == "text" and b.get("text") for b in system),
        "system: text blocks only",
    )
    for block in system if isinstance(system, list) else []:
        _cache_control(block, "system")
    messages = body.get("messages")
    require(isinstance(messages, list) and messages, "messages: Field required")
    tool_ids: set[str] = set()
    for index, message in enumerate(messages):
        role = message.get("role")
        require(role in ("user", "assistant", "system"), f"messages.{index}.role: user, assistant or system")
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        require(isinstance(blocks, list) and blocks, f"messages.{index}.content: must not be empty")
        results = {b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"}
        require(
            results <= tool_ids, f"messages.{index}: tool_result without a tool_use in the previous message"
        )
        tool_ids = {b["id"] for b in blocks if b.get("type") == "tool_use"}
        require(
            role != "system" or all(b.get("type") == "text" for b in blocks), f"messages.{index}: text only"
        )
        for block in blocks:
            _block(block, f"messages.{index}")
    for tool in body.get("tools", []):
        require(
            tool.get("name") and isinstance(tool.get("input_schema"), dict), "tools: name and input_schema"
        )
    choice = body.get("tool_choice")
    require(choice is None or choice.get("type") in ("auto", "any", "none", "tool"), "tool_choice.type")


def _thinking(thinking: Any, *, max_tokens: int, betas: frozenset[str] | set[str]) -> None:
    if thinking is None:
        return
    kind = thinking.get("type")
    require(kind in ("enabled", "disabled", "adaptive"), "thinking.type: enabled, disabled or adaptive")
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        require(isinstance(budget, int) and budget >= 1024, "thinking.budget_tokens: at least 1024")
        interleaved = "interleaved-thinking-2025-05-14" in betas
        require(interleaved or budget < max_tokens, "thinking.budget_tokens: must be less than max_tokens")


def _cache_control(block: dict[str, Any], where: str) -> None:
    control = block.get("cache_control")
    require(control is None or control.get("type") == "ephemeral", f"{where}: cache_control.type: ephemeral")


def _block(block: dict[str, Any], where: str) -> None:
    kind = block.get("type")
    _cache_control(block, where)
    if kind in ("thinking", "redacted_thinking"):
        field = "signature" if kind == "thinking" else "data"
        require(isinstance(block.get(field), str) and block[field], f"{where}: {kind} needs its {field}")
    elif kind == "document":
        source = block.get("source", {})
        require(source.get("type") in ("base64", "text", "url", "content"), f"{where}: document source")
    elif kind == "text":
        require(
            isinstance(block.get("text"), str) and block["text"], f"{where}: text blocks must be non-empty"
        )
    elif kind == "image":
        source = block.get("source", {})
        if source.get("type") == "base64":
            require(source.get("media_type") in _MEDIA, f"{where}: image media_type")
            require(isinstance(source.get("data"), str) and source["data"], f"{where}: image data")
        else:
            require(
                source.get("type") == "url" and source.get("url", "").startswith("http"),
                f"{where}: image source",
            )
    elif kind == "tool_use":
        require(
            block.get("id") and block.get("name") and isinstance(block.get("input"), dict),
            f"{where}: tool_use",
        )
    elif kind == "tool_result":
        require(isinstance(block.get("content"), (str, list)), f"{where}: tool_result content")
    else:
        raise Invalid(f"{where}: unknown block type {kind}")


def _usage(reply: AnthropicReply, *, output: int) -> dict[str, Any]:
    return {
        "input_tokens": reply.input_tokens,
        "cache_creation_input_tokens": reply.cache_creation,
        "cache_read_input_tokens": reply.cache_read,
        "output_tokens": output,
    }


def _message(reply: AnthropicReply, model: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if reply.thinking:
        content.append({"type": "thinking", "thinking": reply.thinking, "signature": reply.signature})
    content += [{"type": "text", "text": reply.text}] if reply.text else []
    content += [{"type": "tool_use", "id": t.id, "name": t.name, "input": t.input} for t in reply.tool_uses]
    return {
        "id": MESSAGE_ID,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": reply.stop(),
        "stop_sequence": reply.stop_sequence,
        "usage": {**_usage(reply, output=reply.output_tokens), "service_tier": "standard"},
    }


def _error(error: AnthropicError) -> web.Response:
    body = {
        "type": "error",
        "error": {"type": error.type, "message": error.message},
        "request_id": "req_fake",
    }
    return web.json_response(body, status=error.status, headers=error.headers)


def _event(kind: str, payload: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **payload})}\n\n".encode()


def _stream_events(reply: AnthropicReply, model: str) -> list[bytes]:
    start = {k: v for k, v in _message(reply, model).items() if k != "usage"}
    start.update(content=[], stop_reason=None, usage=_usage(reply, output=1))
    events = [_event("message_start", {"message": start}), _event("ping", {})]
    index = 0
    if reply.thinking:
        block = {"type": "thinking", "thinking": "", "signature": ""}
        events.append(_event("content_block_start", {"index": 0, "content_block": block}))
        delta = {"type": "thinking_delta", "thinking": reply.thinking}
        events.append(_event("content_block_delta", {"index": 0, "delta": delta}))
        delta = {"type": "signature_delta", "signature": reply.signature}
        events.append(_event("content_block_delta", {"index": 0, "delta": delta}))
        events.append(_event("content_block_stop", {"index": 0}))
        index = 1
    if reply.text:
        block = {"type": "text", "text": ""}
        events.append(_event("content_block_start", {"index": index, "content_block": block}))
        words = reply.text.split(" ")
        for i, word in enumerate(words):
            delta = {"type": "text_delta", "text": word if i == 0 else " " + word}
            events.append(_event("content_block_delta", {"index": index, "delta": delta}))
        events.append(_event("content_block_stop", {"index": index}))
        index += 1
    for offset, tool in enumerate(reply.tool_uses):
        block = {"type": "tool_use", "id": tool.id, "name": tool.name, "input": {}}
        events.append(_event("content_block_start", {"index": index + offset, "content_block": block}))
        arguments = json.dumps(tool.input)
        for piece in (arguments[: len(arguments) // 2], arguments[len(arguments) // 2 :]):
            delta = {"type": "input_json_delta", "partial_json": piece}
            events.append(_event("content_block_delta", {"index": index + offset, "delta": delta}))
        events.append(_event("content_block_stop", {"index": index + offset}))
    usage = {"output_tokens": reply.output_tokens}
    events.append(
        _event(
            "message_delta",
            {"delta": {"stop_reason": reply.stop(), "stop_sequence": reply.stop_sequence}, "usage": usage},
        )
    )
    events.append(_event("message_stop", {}))
    return events


async def _stream(request: web.Request, reply: AnthropicReply, model: str) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
    await response.prepare(request)
    events = _stream_events(reply, model)
    for count, event in enumerate(events):
        if reply.fail_after is not None and count == reply.fail_after + 3:  # start, ping, block start
            error = {"error": {"type": "overloaded_error", "message": reply.error_message}}
            await response.write(_event("error", error))
            break
        await response.write(event)
        await asyncio.sleep(reply.event_delay)
    await response.write_eof()
    return response
