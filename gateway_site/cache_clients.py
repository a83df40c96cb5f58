"""django-redis clients whose ``clear()`` removes the cache's own keys and nothing else.

django-redis clears a cache with ``FLUSHDB``. The cache shares its Redis database with the rate
and parallel counters, the cost quotas and the usage outbox (one ``REDIS_URL``), so a
``cache.clear()`` (ours, a third-party app's, an operator's in ``manage.py shell``) would
zero every tenant's spend and drop the usage not yet recorded. Here it deletes, in batches, the
keys the cache's key function makes under its ``KEY_PREFIX`` (every version), found with
``SCAN`` so Redis is never blocked, and unlinked so a large value is freed off Redis's main
thread."""

from __future__ import annotations

from typing import Any

from django_redis.client import DefaultClient, SentinelClient
from django_redis.client.default import _main_exceptions, glob_escape
from django_redis.exceptions import ConnectionInterrupted

_BATCH = 500


class _OwnKeysOnly(DefaultClient):  # type: ignore[misc]
    def own_keys_pattern(self) -> str:
        """The glob of every key this cache writes: its prefix, any version, any name."""
        return str(self._backend.key_func("*", glob_escape(self._backend.key_prefix), "*"))

    def clear(self, client: Any = None) -> None:
        if client is None:
            client = self.get_client(write=True)
        try:
            batch: list[bytes] = []
            for key in client.scan_iter(match=self.own_keys_pattern(), count=1000):
                batch.append(key)
                if len(batch) == _BATCH:
                    client.unlink(*batch)
                    batch.clear()
            if batch:
                client.unlink(*batch)
        except _main_exceptions as error:
            raise ConnectionInterrupted(connection=client) from error


class OwnKeysClient(_OwnKeysOnly):
    """One Redis server."""


class OwnKeysSentinelClient(_OwnKeysOnly, SentinelClient):  # type: ignore[misc]
    """A Sentinel-watched primary (``clear()`` runs on the primary)."""
