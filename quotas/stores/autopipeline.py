"""Redis calls of one event loop sent together: every script call issued in the same turn of
the loop goes to Redis in one pipeline (one write, one read, one connection). Under load a
turn carries many admissions and settlements, so a pool of a few connections serves any number
of requests in flight (each call holding a connection of its own starved the pool: at a
thousand requests in flight, calls queued for a connection longer than Redis's timeout).

Settlements are not urgent: they wait up to ``linger`` seconds for the next admission's
pipeline (or their own), so at low concurrency a request's settlement and the next request's
admission share a round trip. A call whose script Redis does not know (``NOSCRIPT``: Redis
restarted or flushed) is sent again after the script is loaded; it had not run.

A script call declares its keys (``EVALSHA sha numkeys key... arg...``): on Redis Cluster the
client sends each command to the node that owns its keys' slot, and a pipeline spanning several
nodes is one round trip to each."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, ResponseError

Arg = str | int | bytes


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua script by its source and SHA-1 (what ``EVALSHA`` names)."""

    source: str
    sha: str


@dataclass(slots=True)
class _Call:
    command: tuple[Arg, ...]
    script: Script | None  # None: a plain command, never NOSCRIPT
    future: asyncio.Future[Any]


@dataclass(slots=True)
class AutoPipeline:
    client: aioredis.Redis
    linger: float = 0.002
    batches: int = 0  # pipelines sent (NOSCRIPT retries not counted)
    _queue: list[_Call] = field(default_factory=list)
    _now: asyncio.Handle | None = None
    _later: asyncio.TimerHandle | None = None
    _sending: set[asyncio.Task[None]] = field(default_factory=set)

    async def call(
        self, script: Script, keys: Sequence[Arg], args: Sequence[Arg], *, urgent: bool = True
    ) -> Any:
        """The script's reply (a Redis error reply raises ``ResponseError``)."""
        return await self.command(
            ("EVALSHA", script.sha, len(keys), *keys, *args), urgent=urgent, script=script
        )

    async def command(
        self, command: Sequence[Arg], *, urgent: bool = True, script: Script | None = None
    ) -> Any:
        """The reply of one Redis command sent with the others of this turn."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append(_Call(tuple(command), script, future))
        if urgent and self._now is None:
            self._now = loop.call_soon(self._flush)
        elif self._now is None and self._later is None:
            self._later = loop.call_later(self.linger, self._flush)
        return await future

    def _flush(self) -> None:
        for handle in (self._now, self._later):
            if handle is not None:
                handle.cancel()
        self._now = self._later = None
        batch, self._queue = self._queue, []
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[_Call]) -> None:
        self.batches += 1
        try:
            replies = await self._execute(batch)
            missing = [c for c, r in zip(batch, replies, strict=True) if isinstance(r, NoScriptError)]
            if missing:
                await self._load({c.script for c in missing if c.script is not None})
                replies = _merge(batch, replies, missing, await self._execute(missing))
        except Exception as exc:
            for call in batch:
                if not call.future.done():
                    call.future.set_exception(exc)
            return
        for call, reply in zip(batch, replies, strict=True):
            if call.future.done():  # the caller gave up waiting (its deadline passed)
                continue
            if isinstance(reply, ResponseError):
                call.future.set_exception(reply)
            else:
                call.future.set_result(reply)

    async def _execute(self, batch: list[_Call]) -> list[Any]:
        async with self.client.pipeline(transaction=False) as pipe:
            for call in batch:
                pipe.execute_command(*call.command)
            return list(await pipe.execute(raise_on_error=False))

    async def _load(self, scripts: set[Script]) -> None:
        for script in scripts:
            await self.client.script_load(script.source)

    async def drain(self) -> None:
        """Send what is queued and wait for every batch in flight (shutdown and tests)."""
        if self._queue:
            self._flush()
        while self._sending:
            await asyncio.gather(*list(self._sending), return_exceptions=True)


def _merge(batch: list[_Call], replies: list[Any], retried: list[_Call], again: list[Any]) -> list[Any]:
    """``replies`` with the answers of the calls sent again in place of their NOSCRIPT errors."""
    answers = {id(call): reply for call, reply in zip(retried, again, strict=True)}
    return [answers.get(id(call), reply) for call, reply in zip(batch, replies, strict=True)]
