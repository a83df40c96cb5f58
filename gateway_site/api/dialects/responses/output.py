"""The ``response`` object: what every rendering of one response shares (``ResponseFrame``: its
id, creation time and request), the object at each status, its ``usage``, and the output items
of a chat completion (an assistant ``message`` with ``output_text`` / ``refusal`` parts, then a
``function_call`` item per tool call)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from gateway_site.api.dialects.responses.create import CreateRequest
from gateway_site.api.dialects.responses.items import new_id
from gateway_site.api.parse.chat import JsonObject
from providers.types import Usage
from providers.vendors.openai.response import parse_usage

# A chat finish reason that leaves the response incomplete, and the reason it gives.
INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


@dataclass(frozen=True, slots=True)
class ResponseFrame:
    id: str
    created_at: int
    request: CreateRequest

    @classmethod
    def new(cls, request: CreateRequest) -> ResponseFrame:
        return cls(id=new_id("resp"), created_at=int(time.time()), request=request)


def usage_object(usage: Usage) -> JsonObject:
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def response_object(
    frame: ResponseFrame,
    *,
    status: str,
    output: list[JsonObject],
    usage: Usage | None = None,
    incomplete: str | None = None,
    error: JsonObject | None = None,
) -> JsonObject:
    """The response at ``status``, echoing the request's parameters as OpenAI does."""
    body, raw = frame.request.body, frame.request.raw
    text = raw.get("text")
    text_format = text.get("format") if isinstance(text, dict) else None
    reasoning = body.reasoning
    response: JsonObject = {
        "id": frame.id,
        "object": "response",
        "created_at": frame.created_at,
        "status": status,
        "background": False,
        "completed_at": int(time.time()) if status == "completed" else None,
        "error": error,
        "incomplete_details": {"reason": incomplete} if incomplete else None,
        "instructions": body.instructions,
        "max_output_tokens": body.max_output_tokens,
        "metadata": body.metadata or {},
        "model": body.model,
        "output": output,
        "parallel_tool_calls": body.parallel_tool_calls is not False,
        "previous_response_id": body.previous_response_id,
        "reasoning": {
            "effort": reasoning.effort if reasoning else None,
            "summary": (reasoning.summary or reasoning.generate_summary) if reasoning else None,
        },
        "store": frame.request.store,
        "temperature": 1.0 if body.temperature is None else body.temperature,
        "text": {
            "format": text_format or {"type": "text"},
            "verbosity": (body.text.verbosity if body.text else None) or "medium",
        },
        "tool_choice": raw.get("tool_choice") or "auto",
        "tools": raw.get("tools") or [],
        "top_p": 1.0 if body.top_p is None else body.top_p,
        "truncation": "disabled",
    }
    if usage is not None:  # not nullable: an unfinished response has none
        response["usage"] = usage_object(usage)
    if body.user is not None:
        response["user"] = body.user
    return response


def output_text(text: str) -> JsonObject:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_item(parts: list[JsonObject], *, item_id: str, status: str) -> JsonObject:
    return {"id": item_id, "type": "message", "role": "assistant", "status": status, "content": parts}


def call_item(*, item_id: str, call_id: str, name: str, arguments: str, status: str) -> JsonObject:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def completed_response(frame: ResponseFrame, completion: JsonObject) -> JsonObject:
    """A chat completion's first choice as the response (completed, or incomplete when it was
    cut by the token limit or a content filter)."""
    choices = completion.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    finish = choice.get("finish_reason")
    incomplete = INCOMPLETE.get(str(finish))
    status = "incomplete" if incomplete else "completed"
    message = choice.get("message")
    output = _output(message if isinstance(message, dict) else {}, status=status)
    return response_object(
        frame, status=status, output=output, usage=parse_usage(completion.get("usage")), incomplete=incomplete
    )


def _output(message: JsonObject, *, status: str) -> list[JsonObject]:
    content, refusal, calls = message.get("content"), message.get("refusal"), message.get("tool_calls")
    calls = calls if isinstance(calls, list) else []
    parts: list[JsonObject] = []
    if isinstance(content, str) and (content or not calls):
        parts.append(output_text(content))
    if isinstance(refusal, str) and refusal:
        parts.append({"type": "refusal", "refusal": refusal})
    items = [message_item(parts, item_id=new_id("msg"), status=status)] if parts else []
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            items.append(
                call_item(
                    item_id=new_id("fc"),
                    call_id=str(call.get("id", "")),
                    name=str(function.get("name", "")),
                    arguments=str(function.get("arguments", "")),
                    status=status,
                )
            )
    return items
