"""The built-in ``mock`` provider: answers in-process, with no network and no key.

The reply is deterministic (it echoes the last user message), the token counts are real counts
of the prompt and the reply (``providers.tokens``), ``max_tokens`` / ``max_completion_tokens``
truncate with ``finish_reason: "length"``, and streaming sends one chunk per token with the
provider's ``chunk_delay_ms`` between chunks."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator

import orjson

from providers.adapters.base import JsonObject, UpstreamCall
from providers.adapters.chat_request import messages
from providers.adapters.chunks import usage_wire
from providers.tokens import count_message_tokens, split_tokens
from providers.types import Completion, StreamEvent, Usage

DEFAULT_CHUNK_DELAY_MS = 20.0


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def reply_for(body: JsonObject) -> str:
    users = [_text_of(m.get("content")) for m in messages(body) if m.get("role") == "user"]
    said = users[-1].strip() if users else ""
    return f"This is mock-echo. You said: {said}" if said else "This is mock-echo. You sent no text."


def _token_limit(body: JsonObject) -> int | None:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def plan_reply(body: JsonObject) -> tuple[list[str], str, Usage]:
    """The reply's tokens, its finish reason and its usage."""
    tokens = split_tokens(reply_for(body))
    finish = "stop"
    limit = _token_limit(body)
    if limit is not None and len(tokens) > limit:
        tokens, finish = tokens[:limit], "length"
    prompt = count_message_tokens([_text_of(m.get("content")) for m in messages(body)])
    return tokens, finish, Usage(prompt_tokens=prompt, completion_tokens=len(tokens))


class MockAdapter:
    async def complete(self, call: UpstreamCall) -> Completion:
        tokens, finish, usage = plan_reply(call.body)
        body = {
            "id": f"chatcmpl-{secrets.token_hex(12)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": call.deployment.upstream_model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(tokens), "refusal": None},
                    "logprobs": None,
                    "finish_reason": finish,
                }
            ],
            "usage": usage_wire(usage),
            "system_fingerprint": "fp_mock",
        }
        return Completion(body=orjson.dumps(body), usage=usage)

    async def open_stream(self, call: UpstreamCall) -> MockStream:
        return MockStream(call)


class MockStream:
    def __init__(self, call: UpstreamCall) -> None:
        self._call = call
        delay = call.deployment.provider.chunk_delay_ms
        self._delay = (DEFAULT_CHUNK_DELAY_MS if delay is None else delay) / 1000.0

    async def events(self) -> AsyncIterator[StreamEvent]:
        tokens, finish, usage = plan_reply(self._call.body)
        base = {
            "id": f"chatcmpl-{secrets.token_hex(12)}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self._call.deployment.upstream_model,
            "system_fingerprint": "fp_mock",
        }

        def chunk(delta: dict[str, object], finish_reason: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            return orjson.dumps({**base, "choices": [choice]})

        yield StreamEvent(payload=chunk({"role": "assistant", "content": ""}))
        for token in tokens:
            if self._delay:
                await asyncio.sleep(self._delay)
            yield StreamEvent(payload=chunk({"content": token}), text=token)
        yield StreamEvent(payload=chunk({}, finish))
        usage_chunk = orjson.dumps({**base, "choices": [], "usage": usage_wire(usage)})
        yield StreamEvent(payload=usage_chunk, usage=usage, usage_only=True)

    async def aclose(self) -> None:
        return None
