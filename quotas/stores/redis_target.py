"""Which Redis a ``REDIS_URL`` names, and the clients that reach it.

Three forms (``rediss`` for TLS in each):

* one server: ``redis://[user:password@]host:port/db`` (or ``unix://``), as redis-py reads it;
* Sentinel: ``redis+sentinel://[user:password@]host:port[,host:port...]/service[/db]``, the
  sentinels to ask for the current primary of ``service``; ``sentinel_password`` and
  ``sentinel_username`` in the query authenticate to the sentinels themselves (else none);
* Redis Cluster: ``redis+cluster://[user:password@]host:port[,host:port...]``, any nodes of the
  cluster (the client learns the others and follows slot moves and failovers).

A password kept in a file that rotates (Kubernetes and Docker secrets, Vault Agent) is named in the
query instead: ``password_file=/path`` (any form; the URL then carries no password). The file is
read for every new connection, so after a rotation new connections authenticate with the new
password with no restart (connections already open stay authenticated, as Redis keeps them).

Every multi-key script and transaction of the gateway keeps its keys in one hash slot (hash tags:
the tenant's ``{t<id>}``, the routing sync's ``{routing}``), so the same calls run unchanged on
each form."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, cast
from urllib.parse import parse_qs, parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.asyncio.sentinel import SentinelConnectionPool as AsyncSentinelConnectionPool
from redis.cluster import ClusterNode, RedisCluster
from redis.credentials import CredentialProvider
from redis.sentinel import Sentinel

from quotas.stores.secret_file import FollowedSecret

Kind = Literal["server", "sentinel", "cluster"]
_SCHEMES: dict[str, tuple[Kind, bool]] = {
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
}


class InvalidRedisUrl(ValueError):
    """The URL is none of the three forms; the message never repeats a password."""


class FileCredentials(CredentialProvider):
    """The password read from a file at each new connection (the username, if any, from the
    URL); a file that cannot be read, or is empty, leaves the last password read in use
    (``quotas.stores.secret_file``)."""

    def __init__(self, path: str, username: str | None = None) -> None:
        self.path = path
        self.username = username
        self._secret = FollowedSecret(path, what="Redis password")

    def password(self) -> str:
        password = self._secret.read()
        if not password:
            raise redis.AuthenticationError(f"Redis password file {self.path} holds no password")
        return password

    def get_credentials(self) -> tuple[str] | tuple[str, str]:
        password = self.password()
        return (self.username, password) if self.username else (password,)

    async def get_credentials_async(self) -> tuple[str] | tuple[str, str]:
        return self.get_credentials()  # a small local file, read per new connection only

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FileCredentials):
            return NotImplemented
        return (other.path, other.username) == (self.path, self.username)

    def __hash__(self) -> int:
        return hash((self.path, self.username))

    def __repr__(self) -> str:
        return f"FileCredentials({self.path!r}, username={self.username!r})"


def split_password_file(url: str) -> tuple[str, FileCredentials | None]:
    """``url`` without its ``password_file`` query parameter and user information, and the
    credentials they give (None: the URL names no password file; ``url`` is returned as is)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    files = [value for name, value in query if name == "password_file"]
    if not files:
        return url, None
    if not files[-1]:
        raise InvalidRedisUrl("password_file names no file")
    userinfo, at, hosts = parts.netloc.rpartition("@")
    username = unquote(userinfo.partition(":")[0]) if at else ""
    rest = urlencode([(name, value) for name, value in query if name != "password_file"])
    return urlunsplit(parts._replace(netloc=hosts, query=rest)), FileCredentials(files[-1], username or None)


def with_password_file(url: str, path: str) -> str:
    """``url`` authenticating with the password in the file ``path`` (any password in the URL
    is dropped; the username is kept)."""
    parts = urlsplit(url)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0] if at else ""
    netloc = f"{user}@{hosts}" if user else hosts
    query = [(n, v) for n, v in parse_qsl(parts.query, keep_blank_values=True) if n != "password_file"]
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode([*query, ("password_file", path)])))


@dataclass(frozen=True, slots=True)
class RedisTarget:
    kind: Kind
    url: str  # the one-server URL as given, less any password file (kind "server")
    nodes: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False
    sentinel_username: str | None = None
    sentinel_password: str | None = None
    credentials: FileCredentials | None = field(default=None, compare=False)

    def auth(self) -> dict[str, Any]:
        """Credentials and TLS for the data nodes (not the sentinels)."""
        extra: dict[str, Any] = {"username": self.username, "password": self.password}
        if self.credentials is not None:
            extra = {"credential_provider": self.credentials}
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
    url, from_file = split_password_file(url)
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("redis", "rediss", "unix"):
        return RedisTarget(kind="server", url=url, credentials=from_file)
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
        credentials=from_file,
    )


def _timeouts(timeout: float | None, connect_timeout: float | None) -> dict[str, Any]:
    return {"socket_timeout": timeout, "socket_connect_timeout": connect_timeout or timeout}


def _file_auth(target: RedisTarget) -> dict[str, Any]:
    return {} if target.credentials is None else {"credential_provider": target.credentials}


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
        return redis.Redis.from_url(target.url, **timeouts, **_file_auth(target), **options)
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
            target.url,
            max_connections=max_connections,
            timeout=timeout,
            **timeouts,
            **_file_auth(target),
            **options,
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
