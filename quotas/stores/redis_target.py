"""Which Redis a ``REDIS_URL`` names, and the clients that reach it.

Three forms (``rediss`` for TLS in each):

* one server: ``redis://[user:password@]host:port/db`` (or ``unix://``), as redis-py reads it;
* Sentinel: ``redis+sentinel://[user:password@]host:port[,host:port...]/service[/db]``, the
  sentinels to ask for the current primary of ``service``; ``sentinel_password`` and
  ``sentinel_username`` in the query authenticate to the sentinels themselves (else none);
* Redis Cluster: ``redis+cluster://[user:password@]host:port[,host:port...]``, any nodes of the
  cluster (the client learns the others and follows slot moves and failovers).

Every multi-key script and transaction of the gateway keeps its keys in one hash slot (hash tags:
the tenant's ``{t<id>}``, the routing sync's ``{routing}``), so the same calls run unchanged on
each form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast
from urllib.parse import parse_qs, unquote, urlsplit

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.asyncio.sentinel import SentinelConnectionPool as AsyncSentinelConnectionPool
from redis.cluster import ClusterNode, RedisCluster
from redis.sentinel import Sentinel

Kind = Literal["server", "sentinel", "cluster"]
_SCHEMES: dict[str, tuple[Kind, bool]] = {
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
}


class InvalidRedisUrl(ValueError):
    """The URL is none of the three forms; the message never repeats a password."""


@dataclass(frozen=True, slots=True)
class RedisTarget:
    kind: Kind
    url: str  # the one-server URL as given (kind "server")
    nodes: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False
    sentinel_username: str | None = None
    sentinel_password: str | None = None

    def auth(self) -> dict[str, Any]:
        """Credentials and TLS for the data nodes (not the sentinels)."""
        extra: dict[str, Any] = {"username": self.username, "password": self.password}
        if self.tls:
            extra["ssl"] = True
        return extra


def _nodes(netloc: str) -> tuple[tuple[str, int], ...]:
    nodes = []
    for part in netloc.split(","):
        host, sep, port = part.strip().rpartition(":")
        if not sep or not host or not port.isdigit():
            raise InvalidRedisUrl(f"each node must be host:port, got {part.strip()!r}")
        nodes.append((host.strip("[]"), int(port)))
    return tuple(nodes)


def parse_redis_url(url: str) -> RedisTarget:
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("redis", "rediss", "unix"):
        return RedisTarget(kind="server", url=url)
    if scheme not in _SCHEMES:
        raise InvalidRedisUrl(
            "the scheme must be redis, rediss, unix, redis+sentinel, rediss+sentinel, "
            f"redis+cluster or rediss+cluster, got {scheme or 'none'!r}"
        )
    kind, tls = _SCHEMES[scheme]
    parts = urlsplit(url)
    credentials, _, hosts = parts.netloc.rpartition("@")
    username, _, password = credentials.partition(":")
    path = [unquote(p) for p in parts.path.split("/") if p]
    query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    if kind == "sentinel" and not path:
        raise InvalidRedisUrl("a Sentinel URL names the service: redis+sentinel://host:port/service")
    db_text = (path[1] if len(path) > 1 else "0") if kind == "sentinel" else (path[0] if path else "0")
    if not db_text.isdigit() or (kind == "cluster" and db_text != "0"):
        raise InvalidRedisUrl(f"the database must be a number (0 on a cluster), got {db_text!r}")
    return RedisTarget(
        kind=kind,
        url=url,
        nodes=_nodes(hosts),
        service=path[0] if kind == "sentinel" else "",
        db=int(db_text),
        username=unquote(username) or None,
        password=unquote(password) or None,
        tls=tls,
        sentinel_username=query.get("sentinel_username"),
        sentinel_password=query.get("sentinel_password"),
    )


def _timeouts(timeout: float | None, connect_timeout: float | None) -> dict[str, Any]:
    return {"socket_timeout": timeout, "socket_connect_timeout": connect_timeout or timeout}


def _sentinel_kwargs(target: RedisTarget, timeouts: dict[str, Any]) -> dict[str, Any]:
    return {**timeouts, "username": target.sentinel_username, "password": target.sentinel_password}


def sync_client(
    url: str, *, timeout: float | None, connect_timeout: float | None = None, **options: Any
) -> redis.Redis:
    """A blocking client for ``url`` (threads, commands, Celery tasks). Cluster clients answer
    the same commands; ``options`` go to every connection."""
    target = parse_redis_url(url)
    timeouts = _timeouts(timeout, connect_timeout)
    if target.kind == "server":
        return redis.Redis.from_url(url, **timeouts, **options)
    if target.kind == "sentinel":
        sentinel = Sentinel(
            list(target.nodes), sentinel_kwargs=_sentinel_kwargs(target, timeouts), **timeouts
        )
        return cast(
            redis.Redis, sentinel.master_for(target.service, db=target.db, **target.auth(), **options)
        )
    cluster: Any = RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],  # type: ignore[no-untyped-call]
        **timeouts,
        **target.auth(),
        **options,
    )
    return cast(redis.Redis, cluster)  # answers the commands of ``redis.Redis`` the gateway uses


class BlockingSentinelPool(AsyncSentinelConnectionPool, aioredis.BlockingConnectionPool):
    """The current primary's connections, at most ``max_connections``: a call finding them all
    busy waits for one (``timeout``) as on one server, rather than failing at once."""


def async_client(
    url: str,
    *,
    timeout: float | None,
    connect_timeout: float | None = None,
    max_connections: int = 64,
    **options: Any,
) -> aioredis.Redis:
    """An asyncio client for ``url``, at most ``max_connections`` per server it talks to.
    ``timeout`` bounds each command and the wait for a free connection."""
    target = parse_redis_url(url)
    timeouts = _timeouts(timeout, connect_timeout)
    if target.kind == "server":
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=timeout, **timeouts, **options
        )
        return aioredis.Redis.from_pool(pool)
    if target.kind == "sentinel":
        sentinel = AsyncSentinel(
            list(target.nodes), sentinel_kwargs=_sentinel_kwargs(target, timeouts), **timeouts
        )
        return cast(
            aioredis.Redis,
            sentinel.master_for(
                target.service,
                connection_pool_class=BlockingSentinelPool,
                db=target.db,
                max_connections=max_connections,
                timeout=timeout,
                **target.auth(),
                **options,
            ),
        )
    cluster: Any = AsyncRedisCluster(
        startup_nodes=[AsyncClusterNode(host, port) for host, port in target.nodes],
        max_connections=max_connections,
        **timeouts,
        **target.auth(),
        **options,
    )
    return cast(aioredis.Redis, cluster)  # answers the commands of ``redis.asyncio.Redis`` the gateway uses
