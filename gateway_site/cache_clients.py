"""django-redis clients whose ``clear()`` removes the cache's own keys and nothing else.

django-redis clears a cache with ``FLUSHDB``. The cache shares its Redis database with the rate
and parallel counters, the cost quotas and the usage outbox (one ``REDIS_URL``), so a
``cache.clear()`` (ours, a third-party app's, an operator's in ``manage.py shell``) would
zero every tenant's spend and drop the usage not yet recorded. Here it is django-redis's own
``delete_pattern`` (``SCAN``, never blocking Redis) on the keys the cache's key function makes
under its ``KEY_PREFIX``, of every version."""

from __future__ import annotations

from typing import Any

from django_redis.client import DefaultClient, SentinelClient
from django_redis.client.default import glob_escape
from django_redis.util import CacheKey


class OwnKeysClient(DefaultClient):  # type: ignore[misc]
    """One Redis server."""

    def clear(self, client: Any = None) -> None:
        # a CacheKey is taken as the pattern itself, not given this cache's prefix and version
        own = self._backend.key_func("*", glob_escape(self._backend.key_prefix), "*")
        self.delete_pattern(CacheKey(own), client=client, itersize=1000)


class OwnKeysSentinelClient(OwnKeysClient, SentinelClient):  # type: ignore[misc]
    """A Sentinel-watched primary (``clear()`` runs on the primary)."""
