"""The response cache: which chat requests it may answer (``plan_caching``; ``may_read`` for
the lookup alone), the key an answer is stored under (``cache_key``), and the two levels it
lives in: ``LocalCache``, an in-process LRU bounded by entry count and total bytes, and Redis
(shared by every instance), both expiring an entry at its TTL. ``ResponseCache`` reads L1 then
L2 (one Redis round trip) and writes both, L2 in the background. Redis trouble never fails a
request: a read becomes a miss, a write is dropped, and either is logged at most once a minute.
No Django; the Redis client is injected."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from providers.types import CachePolicy, Usage

logger = logging.getLogger(__name__)

FULL_REQUEST = "full_request"
MESSAGES_ONLY = "messages_only"
KEY_STRATEGIES = (FULL_REQUEST, MESSAGES_ONLY)

# Request fields that do not change the answer: how it is delivered (``stream``,
# ``stream_options``), who asked (``user``, ``safety_identifier``, ``metadata``), whether OpenAI
# keeps a copy (``store``), which capacity pool serves it (``service_tier``) and the upstream's
# own prompt-cache routing hint (``prompt_cache_key``). ``model`` is keyed separately.
TRANSPORT_FIELDS = frozenset(
    {
        "model",
        "stream",
        "stream_options",
        "user",
        "safety_identifier",
        "metadata",
        "store",
        "service_tier",
        "prompt_cache_key",
    }
)
# ``messages_only`` keys the conversation and the tool definitions (they are part of the prompt
# the model sees; ``system`` is where the Messages API puts its system prompt); sampling and
# format parameters are ignored.
MESSAGES_ONLY_FIELDS = ("messages", "tools", "system")
# An answer is cacheable only when the upstream finished it normally.
COMPLETE_FINISH_REASONS = frozenset({"stop", "length", "tool_calls"})


CHAT_DIALECT = "chat.completions"


def cache_key(
    body: Mapping[str, object], *, tenant_id: int, model: str, strategy: str, dialect: str = CHAT_DIALECT
) -> str:
    """sha256 (hex) of the canonical JSON (sorted keys) of the tenant, the public model, the
    strategy and the request fields it covers: ``full_request`` every field but
    ``TRANSPORT_FIELDS``, ``messages_only`` the ``MESSAGES_ONLY_FIELDS`` present; and, for a
    dialect other than chat completions, the dialect: two dialects never share an entry."""
    if strategy == MESSAGES_ONLY:
        fields = {name: body[name] for name in MESSAGES_ONLY_FIELDS if name in body}
    else:
        fields = {name: value for name, value in body.items() if name not in TRANSPORT_FIELDS}
    parts: list[object] = [1, tenant_id, model, strategy, fields]
    if dialect != CHAT_DIALECT:
        parts.append(dialect)
    canonical = orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


@dataclass(frozen=True, slots=True)
class CacheControl:
    """The request's ``Cache-Control`` directives that concern the gateway."""

    no_cache: bool = False
    no_store: bool = False
    max_age: int | None = None


def parse_cache_control(header: str | None) -> CacheControl:
    """``no-cache``, ``no-store`` and ``max-age=N`` (N a non-negative integer; anything else
    in the header, or a malformed ``max-age``, is ignored)."""
    no_cache = no_store = False
    max_age: int | None = None
    for directive in (header or "").lower().split(","):
        name, _, value = directive.strip().partition("=")
        if name == "no-cache":
            no_cache = True
        elif name == "no-store":
            no_store = True
        elif name == "max-age" and value.strip().strip('"').isdigit():
            max_age = int(value.strip().strip('"'))
    return CacheControl(no_cache=no_cache, no_store=no_store, max_age=max_age)


@dataclass(frozen=True, slots=True)
class CachePlan:
    """What the cache does for one request: look the ``key`` up (``read``; only entries at most
    ``max_age`` seconds old when set) and store a fresh answer for ``ttl_seconds``."""

    key: str
    read: bool
    ttl_seconds: int
    max_age: int | None = None


def plan_caching(
    body: Mapping[str, object],
    *,
    policy: CachePolicy | None,
    control: CacheControl,
    tenant_id: int,
    model: str,
    max_request_ttl: int,
    dialect: str = CHAT_DIALECT,
) -> CachePlan | None:
    """None (bypass) unless the model has a cache policy or the request opts in with
    ``max-age=N`` (N capped at ``max_request_ttl``; 0 disables the opt-in), and never for
    ``no-store`` or ``n > 1``. A positive ``max-age`` also sets the TTL of what the request
    stores and the oldest entry it accepts. ``no-cache`` (or ``max-age=0``) skips the read but
    stores the fresh answer."""
    ttl = _ttl(body, policy=policy, control=control, max_request_ttl=max_request_ttl)
    if ttl <= 0:
        return None
    strategy = policy.key if policy is not None else FULL_REQUEST
    return CachePlan(
        key=cache_key(body, tenant_id=tenant_id, model=model, strategy=strategy, dialect=dialect),
        read=_reads(control),
        ttl_seconds=ttl,
        max_age=control.max_age,
    )


def may_read(
    body: Mapping[str, object], *, policy: CachePolicy | None, control: CacheControl, max_request_ttl: int
) -> bool:
    """Whether ``plan_caching`` would look the request up (its ``read``), without the key."""
    return _reads(control) and _ttl(body, policy=policy, control=control, max_request_ttl=max_request_ttl) > 0


def _reads(control: CacheControl) -> bool:
    return not control.no_cache and control.max_age != 0


def _ttl(
    body: Mapping[str, object], *, policy: CachePolicy | None, control: CacheControl, max_request_ttl: int
) -> int:
    """Seconds a fresh answer is stored for; 0 or less: the request bypasses the cache."""
    n = body.get("n")
    if control.no_store or (isinstance(n, int) and n > 1):
        return 0
    ttl = policy.ttl_seconds if policy is not None else 0
    if control.max_age and max_request_ttl > 0:
        ttl = min(control.max_age, max_request_ttl)
    return ttl


def completed_normally(body: bytes) -> bool:
    """A non-streaming answer with exactly one choice that finished normally."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    choices = parsed.get("choices") if isinstance(parsed, dict) else None
    if not isinstance(choices, list) or len(choices) != 1 or not isinstance(choices[0], dict):
        return False
    return choices[0].get("finish_reason") in COMPLETE_FINISH_REASONS


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """A stored non-streaming (OpenAI-shaped) completion ``body``, the usage it reported, the
    deployment that produced it, and when it was stored and expires (wall-clock seconds)."""

    body: bytes
    usage: Usage
    deployment_id: int
    stored_at: float
    expires_at: float

    def encode(self) -> bytes:
        """One JSON header line (orjson never writes a raw newline), then the body."""
        u = self.usage
        usage = [
            u.prompt_tokens,
            u.completion_tokens,
            u.cached_tokens,
            u.reasoning_tokens,
            u.cache_write_tokens,
        ]
        header = {"d": self.deployment_id, "t": self.stored_at, "x": self.expires_at, "u": usage}
        return orjson.dumps(header) + b"\n" + self.body

    @classmethod
    def decode(cls, data: bytes) -> CachedAnswer | None:
        head, _, body = data.partition(b"\n")
        try:
            header = orjson.loads(head)
            prompt, completion, cached, reasoning, cache_write = header["u"]
            usage = Usage(prompt, completion, cached, reasoning, cache_write)
            return cls(body, usage, int(header["d"]), float(header["t"]), float(header["x"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None

    @property
    def size(self) -> int:
        return len(self.body) + 200  # the body plus the entry's bookkeeping, roughly


class LocalCache:
    """The L1: an LRU of ``CachedAnswer`` bounded by ``max_entries`` and ``max_bytes`` (the sum
    of ``CachedAnswer.size``), evicting the least recently used first; an entry past its
    ``expires_at`` is a miss and removed. One per process, used from its event loop only.
    (cachetools' caches bound one measure, not both; this is an OrderedDict.)"""

    def __init__(self, *, max_entries: int, max_bytes: int, clock: Callable[[], float] = time.time) -> None:
        self._entries: OrderedDict[str, CachedAnswer] = OrderedDict()
        self._max_entries, self._max_bytes = max_entries, max_bytes
        self._bytes = 0
        self._clock = clock

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def total_bytes(self) -> int:
        return self._bytes

    def get(self, key: str) -> CachedAnswer | None:
        answer = self._entries.get(key)
        if answer is None:
            return None
        if answer.expires_at <= self._clock():
            self._remove(key)
            return None
        self._entries.move_to_end(key)
        return answer

    def put(self, key: str, answer: CachedAnswer) -> None:
        """Store (replacing any entry under ``key``); one larger than ``max_bytes`` is not kept."""
        self._remove(key)
        if answer.size > self._max_bytes or self._max_entries <= 0:
            return
        self._entries[key] = answer
        self._bytes += answer.size
        while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
            self._remove(next(iter(self._entries)))

    def _remove(self, key: str) -> None:
        answer = self._entries.pop(key, None)
        if answer is not None:
            self._bytes -= answer.size


@dataclass(frozen=True, slots=True)
class CacheHit:
    answer: CachedAnswer
    level: str  # "l1" or "l2"


class ResponseCache:
    """L1 (``local``, shared by the process) over L2 (``client``, Redis, one per event loop;
    None: L1 only). Keys live under ``{prefix}cache:``. Every Redis call is bounded by
    ``timeout`` seconds; L2 writes run as background tasks that ``flush`` waits for."""

    def __init__(
        self,
        local: LocalCache,
        *,
        client: aioredis.Redis | None,
        prefix: str,
        timeout: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.local = local
        self._client, self._prefix, self._timeout, self._clock = client, f"{prefix}cache:", timeout, clock
        self._pending: set[asyncio.Task[None]] = set()
        self._logged_at = float("-inf")

    def now(self) -> float:
        return self._clock()

    def redis_key(self, key: str) -> str:
        return self._prefix + key

    @property
    def shared(self) -> bool:
        """Whether there is an L2 (Redis) behind the process's L1."""
        return self._client is not None

    async def get(self, key: str, *, max_age: int | None = None) -> CacheHit | None:
        """The entry under ``key`` from L1, else from L2 (then kept in L1); None on a miss, on
        an entry older than ``max_age`` seconds, and on a Redis error."""
        hit = self._lookup_local(key)
        if hit is None:
            hit = await self._lookup_remote(key)
        if hit is None or (max_age is not None and self._clock() - hit.answer.stored_at > max_age):
            return None
        return hit

    def _lookup_local(self, key: str) -> CacheHit | None:
        answer = self.local.get(key)
        return CacheHit(answer, "l1") if answer is not None else None

    async def _lookup_remote(self, key: str) -> CacheHit | None:
        if self._client is None:
            return None
        try:
            async with asyncio.timeout(self._timeout):
                data = await self._client.get(self.redis_key(key))
        except (RedisError, OSError, TimeoutError) as exc:
            self._log_error("read", exc)
            return None
        answer = CachedAnswer.decode(data) if isinstance(data, bytes) else None
        if answer is None or answer.expires_at <= self._clock():
            return None
        self.local.put(key, answer)
        return CacheHit(answer, "l2")

    def put(self, key: str, *, body: bytes, usage: Usage, deployment_id: int, ttl_seconds: float) -> None:
        """Store an answer for ``ttl_seconds``: in L1 now, in L2 (``SET key value PX ttl``) in
        the background."""
        now = self._clock()
        answer = CachedAnswer(body, usage, deployment_id, stored_at=now, expires_at=now + ttl_seconds)
        self.local.put(key, answer)
        ttl_ms = int(ttl_seconds * 1000)
        if self._client is None or ttl_ms <= 0:
            return
        task = asyncio.get_running_loop().create_task(self._put_remote(key, answer.encode(), ttl_ms))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _put_remote(self, key: str, data: bytes, ttl_ms: int) -> None:
        assert self._client is not None
        try:
            async with asyncio.timeout(self._timeout):
                await self._client.set(self.redis_key(key), data, px=ttl_ms)
        except (RedisError, OSError, TimeoutError) as exc:
            self._log_error("write", exc)

    async def flush(self) -> None:
        """Wait for the L2 writes started so far."""
        while self._pending:
            await asyncio.gather(*list(self._pending))

    async def aclose(self) -> None:
        await self.flush()
        if self._client is not None:
            await self._client.aclose()

    def _log_error(self, action: str, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._logged_at >= 60.0:
            self._logged_at = now
            logger.warning("response cache %s on Redis failed, going on without L2: %r", action, exc)
