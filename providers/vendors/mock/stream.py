"""A planned reply as OpenAI's stream: one chunk per token (text, or a tool call's first delta and
then its argument fragments), the choices' chunks taking turns, with the provider's
``chunk_delay_ms`` between turns; then each choice's finish reason and the usage chunk."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Iterator

from providers.translation.chunks import ChunkWriter, ToolCall
from providers.translation.upstream import UpstreamCall
from providers.types import StreamEvent
from providers.vendors.mock.reply import Plan, PlannedChoice

DEFAULT_CHUNK_DELAY_MS = 20.0


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
