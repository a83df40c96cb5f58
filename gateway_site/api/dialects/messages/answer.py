"""The Messages API's ``message`` made from the gateway's internal answer (an OpenAI chat
completion), for a request a translating deployment served or the response cache answered:
text and ``tool_use`` blocks, the stop reason, and the usage in Anthropic's terms. No Django
here."""

from __future__ import annotations

import orjson

from providers.types import Usage

JsonObject = dict[str, object]

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def stop_reason(finish_reason: object) -> str:
    """A chat finish reason as a Messages stop reason (a stop sequence that matched cannot be
    told from a natural end: both are ``end_turn``)."""
    return STOP_REASONS.get(str(finish_reason), "end_turn")


def message_id(completion_id: object) -> str:
    """A ``msg_`` id: the upstream's when it is one, else made from it."""
    text = str(completion_id or "")
    if text.startswith("msg_"):
        return text
    return "msg_" + (text.removeprefix("chatcmpl-") or "gateway")


def usage_object(usage: Usage | None) -> JsonObject:
    """Usage as Anthropic counts it: ``input_tokens`` excludes the tokens read from or written
    to the prompt cache, which have counts of their own."""
    if usage is None:
        usage = Usage(prompt_tokens=0, completion_tokens=0)
    uncached = usage.prompt_tokens - usage.cached_tokens - usage.cache_write_tokens
    return {
        "input_tokens": max(0, uncached),
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "output_tokens": usage.completion_tokens,
    }


def usage_of(raw: object) -> Usage | None:
    """The usage object of a chat completion or chunk (cache writes are not in OpenAI's shape:
    they stay part of the input)."""
    if not isinstance(raw, dict):
        return None
    details = raw.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else 0
    prompt, completion = raw.get("prompt_tokens"), raw.get("completion_tokens")
    return Usage(
        prompt_tokens=prompt if isinstance(prompt, int) else 0,
        completion_tokens=completion if isinstance(completion, int) else 0,
        cached_tokens=cached if isinstance(cached, int) else 0,
    )


def tool_input(arguments: object) -> JsonObject:
    """A tool call's arguments as the ``input`` object (``{}`` when they are not one)."""
    try:
        parsed = orjson.loads(str(arguments or "{}"))
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def content_blocks(message: JsonObject) -> list[JsonObject]:
    blocks: list[JsonObject] = []
    text = message.get("content") or message.get("refusal")
    if isinstance(text, str) and text:
        blocks.append({"type": "text", "text": text})
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(call, dict) and isinstance(function, dict):
            blocks.append(
                {
                    "type": "tool_use",
                    "id": call.get("id", ""),
                    "name": function.get("name", ""),
                    "input": tool_input(function.get("arguments")),
                }
            )
    return blocks


def message_from_completion(body: bytes, *, model: str) -> bytes:
    """A chat completion (its first choice) as a ``message``; ``model`` when it names none."""
    completion = orjson.loads(body)
    choices = completion.get("choices") if isinstance(completion, dict) else None
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    message = choice.get("message")
    message = message if isinstance(message, dict) else {}
    refused = not message.get("content") and bool(message.get("refusal"))
    return orjson.dumps(
        {
            "id": message_id(completion.get("id")),
            "type": "message",
            "role": "assistant",
            "model": completion.get("model") or model,
            "content": content_blocks(message),
            "stop_reason": "refusal" if refused else stop_reason(choice.get("finish_reason")),
            "stop_sequence": None,
            "usage": usage_object(usage_of(completion.get("usage"))),
        }
    )
