"""The bench's corner of Redis: one database (13 unless ``--redis-url`` says otherwise) and a
key prefix unique to the run (``bench:<UTC time>:<pid>:``), one sub-prefix per gateway, so
that nothing the bench writes meets anything else on the server; every key under the run's
prefix is deleted when the run ends."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass

import redis

DEFAULT_URL = "redis://127.0.0.1:6379/13"
START_HINT = (
    'start one with: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no'
)


@dataclass(frozen=True)
class RedisSpace:
    url: str
    prefix: str

    @classmethod
    def for_run(cls, url: str) -> RedisSpace:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        return cls(url=url, prefix=f"bench:{stamp}:{os.getpid()}:")

    def _client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=5)

    def check(self) -> None:
        try:
            with self._client() as client:
                client.ping()
        except redis.RedisError as exc:
            raise RuntimeError(f"Redis at {self.url} does not answer ({exc}); {START_HINT}") from None

    def gateway_prefix(self, name: str) -> str:
        return f"{self.prefix}{name}:"

    def quota_spent_usd(self, prefix: str) -> float:
        """The settled spend of every quota counter under ``prefix`` (the hashes
        ``<prefix>{t<tenant>}:q<quota>:<period>``), in dollars: proof that the quota path ran."""
        micro = 0
        with self._client() as client:
            for key in client.scan_iter(match=f"{prefix}{{t*}}:q*", count=1000):
                if client.type(key) == b"hash":
                    micro += int(client.hget(key, "spent") or 0)
        return micro / 1_000_000

    def delete_all(self) -> int:
        """Delete every key of this run; return how many there were."""
        deleted = 0
        with self._client() as client:
            batch: list[bytes] = []
            for key in client.scan_iter(match=f"{self.prefix}*", count=1000):
                batch.append(key)
                if len(batch) >= 500:
                    deleted += int(client.delete(*batch))
                    batch.clear()
            if batch:
                deleted += int(client.delete(*batch))
        return deleted
