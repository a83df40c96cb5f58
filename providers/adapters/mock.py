"""The built-in ``mock`` provider: answers in-process, with no network and no key.

The answer is deterministic and decided by ``providers.adapters.mock_reply`` (echo, tool calls,
JSON output, ``n`` choices, real token counts, ``max_tokens``); this module puts it on OpenAI's
wire format. Streaming sends one chunk per token (text, or a tool call's first delta and then
its argument fragments), the choices' chunks taking turns, with the provider's
``chunk_delay_ms`` between turns; then each choice's finish reason and the usage chunk."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Iterator

import orjson

from providers.adapters.base import UpstreamCall
from providers.adapters.chunks import Choice, ChunkWriter, ToolCall, usage_wire
from providers.adapters.mock_reply import Plan, PlannedChoice, plan_reply
from providers.types import Completion, StreamEvent

DEFAULT_CHUNK_DELAY_MS = 20.0


def _tool_calls(choice: PlannedChoice) -> tuple[ToolCall, ...]:
    return tuple(ToolCall(id=c.id, name=c.name, arguments="".join(c.arguments)) for c in choice.calls)


def choice_wire(choice: PlannedChoice) -> dict[str, object]:
    """One ``choices[]`` entry of a ``chat.completion``."""
    content = None if choice.content is None else "".join(choice.content)
    if not choice.legacy:
        return Choice(
            content=content, tool_calls=_tool_calls(choice), finish_reason=choice.finish, index=choice.index
        ).wire()
    message: dict[str, object] = {"role": "assistant", "content": content, "refusal": None}
    if choice.calls:
        call = choice.calls[0]
        message["function_call"] = {"name": call.name, "arguments": "".join(call.arguments)}
    return {"index": choice.index, "message": message, "logprobs": None, "finish_reason": choice.finish}


def choice_events(choice: PlannedChoice, *, writer: ChunkWriter) -> Iterator[StreamEvent]:
    """One choice's chunks, first to finish; made as they are sent (``n`` x tokens can be many)."""
    index = choice.index
    if choice.content is not None:
        yield writer.role(index=index)
        for token in choice.content:
            yield writer.text(token, index=index)
        yield writer.finish(choice.finish, index=index)
        return
    yield writer.delta({"role": "assistant", "content": None}, index=index)
    for position, call in enumerate(choice.calls):
        if choice.legacy:
            yield writer.delta({"function_call": {"name": call.name, "arguments": ""}}, index=index)
            for fragment in call.arguments:
                yield writer.delta({"function_call": {"arguments": fragment}}, index=index, text=fragment)
        else:
            yield writer.tool_call(position, ToolCall(id=call.id, name=call.name, arguments=""), index=index)
            for fragment in call.arguments:
                yield writer.tool_arguments(position, fragment, index=index)
    yield writer.finish(choice.finish, index=index)


def turns(streams: list[Iterator[StreamEvent]]) -> Iterator[list[StreamEvent]]:
    """The choices' chunks in turns: one from each choice that still has one, until none has."""
    while streams:
        turn: list[StreamEvent] = []
        for stream in list(streams):
            event = next(stream, None)
            if event is None:
                streams.remove(stream)
            else:
                turn.append(event)
        if turn:
            yield turn


class MockAdapter:
    async def complete(self, call: UpstreamCall) -> Completion:
        plan = plan_reply(call.body)
        body = {
            "id": f"chatcmpl-{secrets.token_hex(12)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": call.deployment.upstream_model,
            "choices": [choice_wire(choice) for choice in plan.choices],
            "usage": usage_wire(plan.usage),
        }
        return Completion(body=orjson.dumps(body), usage=plan.usage)

    async def open_stream(self, call: UpstreamCall) -> MockStream:
        # Planned here, so that a request the mock refuses is a 400 before the stream starts.
        return MockStream(call, plan=plan_reply(call.body))


class MockStream:
    def __init__(self, call: UpstreamCall, *, plan: Plan) -> None:
        self._plan = plan
        self._model = call.deployment.upstream_model
        delay = call.deployment.provider.chunk_delay_ms
        self._delay = (DEFAULT_CHUNK_DELAY_MS if delay is None else delay) / 1000.0

    async def events(self) -> AsyncIterator[StreamEvent]:
        writer = ChunkWriter(
            id=f"chatcmpl-{secrets.token_hex(12)}", created=int(time.time()), model=self._model
        )
        streams = [choice_events(choice, writer=writer) for choice in self._plan.choices]
        for number, turn in enumerate(turns(streams)):
            if number and self._delay:
                await asyncio.sleep(self._delay)
            for event in turn:
                yield event
        yield writer.usage(self._plan.usage)

    async def aclose(self) -> None:
        return None
