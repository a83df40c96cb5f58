"""The shared limit store: every decision is one ``EVALSHA`` of ``quotas.stores.scripts.ADMIT`` and every
settlement one of ``SETTLE``, so limits and quotas hold exactly across any number of gateway
processes and machines on one Redis: one server, a primary behind Sentinel, or Redis Cluster
(``quotas.stores.redis_target``). A script's keys all carry the tenant's hash tag: one slot.

A settlement given an outbox entry sends the stream's ``XADD`` in the same pipeline as the
script: one round trip (to each node, on a cluster, where the stream lives in a slot of its
own). The event is recorded otherwise (``Outbox.on_failure``) unless Redis acknowledged the
append; a settlement that failed on its own leaves its reservations to their leases.

After a failure the store reports itself unavailable for ``retry_seconds`` without trying, so a
dead Redis costs no timeout per request; then the next request tries again (recovery needs no
restart)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import DataError, RedisError
from redis.typing import EncodableT

from quotas.policy import Plan, QuotaLine
from quotas.stores.autopipeline import AutoPipeline, Script
from quotas.stores.base import (
    LineState,
    Outbox,
    QuotaState,
    Refusal,
    RefusalKind,
    Settled,
    StoreOverloaded,
    StoreUnavailable,
    Verdict,
)
from quotas.stores.deadline import DeadlinePassed, StoreDeadline, never_stalled
from quotas.stores.redis_target import async_client
from quotas.stores.scripts import ADMIT, QUOTA_STATES, SETTLE

_KINDS: dict[int, RefusalKind] = {1: "rate", 2: "too_large", 3: "parallel", 4: "quota"}


logger = logging.getLogger(__name__)


def _script(source: str) -> Script:
    return Script(source=source, sha=hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest())


ADMIT_SCRIPT, SETTLE_SCRIPT, QUOTA_STATES_SCRIPT = _script(ADMIT), _script(SETTLE), _script(QUOTA_STATES)
Arg = str | int


class _HiredisPacking:
    """Commands packed by hiredis in C, as redis-py's sync client does. The asyncio connection
    packs them in Python, argument by argument, and a limiter script call has dozens of
    arguments (the difference per call: docs/benchmarks.md)."""

    def pack_command(self, *args: EncodableT) -> list[bytes]:
        command = args[0]
        if isinstance(command, str):
            args = (*command.encode().split(), *args[1:])
        elif isinstance(command, bytes) and b" " in command:
            args = (*command.split(), *args[1:])
        try:
            return [hiredis.pack_command(cast(Any, args))]  # its stub's tuple type is too narrow
        except TypeError as exc:
            raise DataError(str(exc)) from exc


_HIREDIS_PACKING: dict[type[Any], type[Any]] = {}


def _packing_with_hiredis(connection_class: type[Any]) -> type[Any]:
    packing = _HIREDIS_PACKING.get(connection_class)
    if packing is None:
        name = f"Hiredis{connection_class.__name__}"
        packing = _HIREDIS_PACKING[connection_class] = type(name, (_HiredisPacking, connection_class), {})
    return packing


def create_client(url: str, *, timeout: float | None, max_connections: int = 64) -> aioredis.Redis:
    """A client whose every call ends within ``timeout``: redis-py's default retries (three,
    with backoff) would stretch an outage's wait and could run a script twice. Its connections
    (TCP, TLS or Unix socket, as the URL says) pack commands with hiredis.

    At most ``max_connections``; a call finding them all busy waits for one (within
    ``timeout``). redis-py's default pool fails the call at once ("Too many connections") past
    100, which under load would admit requests unchecked.

    ``RedisStore`` with a ``timeout`` bounds its calls itself (``StoreDeadline``, discounting
    the loop's own lag): its client takes ``timeout=None``, which also spares redis-py's own
    timer per command."""
    client = async_client(
        url,
        timeout=timeout,
        max_connections=max_connections,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=30,
    )
    pool = getattr(client, "connection_pool", None)  # a cluster client has one per node
    if pool is not None:
        pool.connection_class = _packing_with_hiredis(pool.connection_class)
    return client


def admit_args(plan: Plan, now_ms: int | None) -> tuple[list[Arg], list[Arg]]:
    """The admission script's KEYS and ARGV."""
    keys: list[Arg] = [rate.key for rate in plan.rates]
    keys += [parallel.key for parallel in plan.parallel]
    for quota in plan.quotas:
        keys += [quota.key, quota.leases_key]
    args: list[Arg] = [
        "" if now_ms is None else now_ms,
        plan.request_id,
        plan.lease_ms,
        len(plan.rates),
        len(plan.parallel),
        len(plan.quotas),
    ]
    for rate in plan.rates:
        args += [rate.algorithm[0], rate.limit, rate.window_ms, rate.cost]
    args += [parallel.limit for parallel in plan.parallel]
    for quota in plan.quotas:
        hard = "1" if quota.quota.hard else "0"
        args += [quota.limit_micro, hard, quota.amount_micro, quota.expire_at_ms]
    return keys, args


def settle_args(
    plan: Plan | None, *, admitted_ms: int, tokens: int, cost_micro: int, now_ms: int | None
) -> tuple[list[Arg], list[Arg]]:
    """The settlement script's KEYS and ARGV (no line to settle: ARGV's three counts are 0)."""
    if plan is None:
        return [], [admitted_ms, "" if now_ms is None else now_ms, "", 0, 0, 0]
    token_lines = [r for r in plan.rates if r.dimension == "tokens" and tokens != r.cost]
    args: list[Arg] = [
        admitted_ms,
        "" if now_ms is None else now_ms,
        plan.request_id,
        len(token_lines),
        len(plan.parallel),
        len(plan.quotas),
    ]
    keys: list[Arg] = [rate.key for rate in token_lines]
    keys += [parallel.key for parallel in plan.parallel]
    for rate in token_lines:
        args += [rate.algorithm[0], rate.limit, rate.window_ms, tokens - rate.cost]
    for quota in plan.quotas:
        keys += [quota.key, quota.leases_key]
        args += [cost_micro, quota.threshold_micro or 0, quota.expire_at_ms]
    return keys, args


def parse_verdict(plan: Plan, reply: Sequence[Any]) -> Verdict:
    admitted, kind, at, retry, now_ms = (int(v) for v in reply[:5])
    values = [int(v) for v in reply[5:]]
    split = 2 * len(plan.rates)
    if len(values) != split + 2 * len(plan.quotas):
        raise StoreUnavailable(f"unexpected reply of {len(reply)} values from the admission script")
    rates = tuple(LineState(values[i], values[i + 1]) for i in range(0, split, 2))
    quotas = tuple(QuotaState(values[i], values[i + 1]) for i in range(split, len(values), 2))
    refusal = None if admitted else Refusal(_KINDS[kind], at - 1, None if retry < 0 else retry)
    return Verdict(now_ms=now_ms, rates=rates, quotas=quotas, refusal=refusal)


class RedisStore:
    """``timeout``: how long a call may take Redis, measured by ``StoreDeadline`` (the time the
    loop was stalled, from ``stalled``, does not count), within ``cap`` seconds of wall time.
    Without ``timeout`` the client's own socket timeouts bound the calls."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        retry_seconds: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
        on_error: Callable[[], None] = lambda: None,
        timeout: float | None = None,
        cap: float = 10.0,
        stalled: Callable[[], float] = never_stalled,
        linger: float = 0.002,
    ) -> None:
        self._client = client
        self._timeout, self._cap, self._stalled = timeout, cap, stalled
        self._on_error = on_error  # counts failed Redis calls (metrics)
        self._pipeline = AutoPipeline(client, linger=linger)
        self._retry_seconds = retry_seconds
        self._monotonic = monotonic
        self._down_until = 0.0

    async def _call(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """Make one Redis call; after a failure, refuse every call for ``retry_seconds``. A call
        the loop's own lag held past the cap raises ``StoreOverloaded``: Redis is not marked."""
        if self._monotonic() < self._down_until:
            raise StoreUnavailable("Redis failed less than a moment ago")
        try:
            if self._timeout is None:
                return await call()
            async with StoreDeadline(timeout=self._timeout, cap=self._cap, stalled=self._stalled):
                return await call()
        except DeadlinePassed as exc:
            if exc.stalled:
                raise StoreOverloaded("this process ran too late to hear Redis in time") from exc
            self._failed()
            raise StoreUnavailable(f"Redis: {exc}") from exc
        except (TimeoutError, RedisError, OSError) as exc:
            self._failed()
            raise StoreUnavailable(f"Redis: {exc}") from exc
        except Exception as exc:
            # The client itself failing otherwise (redis-py's cluster pipeline during a failover
            # can raise a ValueError or an UnboundLocalError, or answer a short list of replies)
            # is Redis not answering too: the caller fails open or closed, a settlement hands its
            # usage event to the writer, instead of the exception escaping with the event.
            logger.warning("Redis client failed unexpectedly: %s", type(exc).__name__)
            self._failed()
            raise StoreUnavailable(f"Redis client: {type(exc).__name__}") from exc

    def _failed(self) -> None:
        self._down_until = self._monotonic() + self._retry_seconds
        self._on_error()

    async def _run(
        self, script: Script, keys: Sequence[Arg], args: Sequence[Arg], *, urgent: bool = True
    ) -> Sequence[Any]:
        reply = await self._call(lambda: self._pipeline.call(script, keys, args, urgent=urgent))
        if not isinstance(reply, list):
            raise StoreUnavailable("unexpected reply from a limiter script")
        return reply

    async def evaluate(self, plan: Plan, *, now_ms: int | None = None) -> Verdict:
        keys, args = admit_args(plan, now_ms)
        return parse_verdict(plan, await self._run(ADMIT_SCRIPT, keys, args))

    async def _append(self, outbox: Outbox) -> None:
        """The event into its stream, or, failing that, to ``on_failure`` (exactly one of both,
        unless the reply was lost after Redis appended it)."""
        command = ("XADD", outbox.stream, "*", "e", outbox.payload)
        try:
            await self._call(lambda: self._pipeline.command(command, urgent=False))
        except (StoreUnavailable, StoreOverloaded):
            outbox.on_failure()

    async def settle(
        self,
        plan: Plan | None,
        *,
        admitted_ms: int,
        tokens: int,
        cost_micro: int,
        now_ms: int | None = None,
        outbox: Outbox | None = None,
    ) -> tuple[Settled, ...]:
        # Neither is urgent: both ride with the next admission's pipeline, or their own a
        # moment later, together (queued in this same turn of the loop). The append goes first
        # and alone decides the event's fate (appended, or handed to ``on_failure``), whatever
        # becomes of the settlement.
        appended = asyncio.ensure_future(self._append(outbox)) if outbox is not None else None
        try:
            keys, args = settle_args(
                plan, admitted_ms=admitted_ms, tokens=tokens, cost_micro=cost_micro, now_ms=now_ms
            )
            if args[3:6] == [0, 0, 0]:
                return ()
            values = [int(v) for v in await self._run(SETTLE_SCRIPT, keys, args, urgent=False)]
        finally:
            if appended is not None:
                await appended
        return tuple(Settled(spent=values[i], alert=values[i + 1] == 1) for i in range(0, len(values), 2))

    async def quota_states(
        self, lines: tuple[QuotaLine, ...], *, now_ms: int | None = None
    ) -> tuple[QuotaState, ...]:
        if not lines:
            return ()
        keys: list[Arg] = []
        for line in lines:
            keys += [line.key, line.leases_key]
        values = [
            int(v) for v in await self._run(QUOTA_STATES_SCRIPT, keys, ["" if now_ms is None else now_ms])
        ]
        return tuple(QuotaState(values[i], values[i + 1]) for i in range(0, len(values), 2))

    async def aclose(self) -> None:
        await self._pipeline.drain()
        await self._client.aclose()
