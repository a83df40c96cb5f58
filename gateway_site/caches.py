"""Django's cache (``CACHES``) and Channels' layer (``CHANNEL_LAYERS``) from ``REDIS_URL``. The
cache is what the admin's sessions (``cached_db``) and the console's aggregates use. No Django
import: ``settings`` calls it. The cache:

* unset: local memory (``make run`` needs no service; each process has its own);
* one server (``redis://``, ``rediss://``, ``unix://``): django-redis;
* a Sentinel-watched primary: django-redis's ``SentinelClient`` (it asks the sentinels for the
  current primary, so a failover needs no restart);
* on Redis, ``cache.clear()`` deletes the cache's own keys only (``gateway_site.cache_clients``):
  django-redis's own would flush the database the counters, quotas and usage outbox live in;
* a Redis Cluster: local memory, as django-redis has no cluster client (sessions stay correct:
  ``cached_db`` reads the database when a process's cache misses).

A Redis that fails is ignored (``IGNORE_EXCEPTIONS``): a cached read misses, sessions fall back to
the database, and the admin keeps working."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from quotas.stores.redis_target import parse_redis_url

LOCAL = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "gateway"}


def cache_settings(redis_url: str, *, prefix: str, timeout: float) -> dict[str, dict[str, Any]]:
    if not redis_url:
        return {"default": dict(LOCAL)}
    target = parse_redis_url(redis_url)
    if target.kind == "cluster":
        return {"default": dict(LOCAL)}
    options: dict[str, Any] = {
        "SOCKET_CONNECT_TIMEOUT": timeout,
        "SOCKET_TIMEOUT": timeout,
        "IGNORE_EXCEPTIONS": True,
        "CLIENT_CLASS": "gateway_site.cache_clients.OwnKeysClient",
    }
    location = target.url if target.kind == "server" else redis_url
    if target.credentials is not None:  # a password file, read for each new connection
        options["CONNECTION_POOL_KWARGS"] = {"credential_provider": target.credentials}
    if target.kind == "sentinel":
        scheme = "rediss" if target.tls else "redis"
        credentials = ""
        if target.username or target.password:
            credentials = f"{quote(target.username or '', safe='')}:{quote(target.password or '', safe='')}@"
        location = f"{scheme}://{credentials}{target.service}/{target.db}"
        sentinel_kwargs: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
        if target.sentinel_password:
            sentinel_kwargs |= {"username": target.sentinel_username, "password": target.sentinel_password}
        options |= {
            "CLIENT_CLASS": "gateway_site.cache_clients.OwnKeysSentinelClient",
            "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
            "SENTINELS": list(target.nodes),
            "SENTINEL_KWARGS": sentinel_kwargs,
        }
    return {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": location,
            "KEY_PREFIX": f"{prefix}django",
            "OPTIONS": options,
        }
    }


def channel_layers(redis_url: str, *, prefix: str) -> dict[str, dict[str, Any]]:
    """Django Channels' layer (the admin's live tail): channels-redis on one server or behind
    Sentinel; in memory without Redis or on a cluster (channels-redis has no cluster support:
    each process then serves the requests it answered itself)."""
    if not shared_layer(redis_url):
        return {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    target = parse_redis_url(redis_url)
    host: Any = redis_url
    if target.kind == "server" and target.credentials is not None:
        host = {"address": target.url, "credential_provider": target.credentials}
    if target.kind == "sentinel":
        sentinel_kwargs: dict[str, Any] = {}
        if target.sentinel_password:
            sentinel_kwargs = {"username": target.sentinel_username, "password": target.sentinel_password}
        host = {
            "sentinels": list(target.nodes),
            "master_name": target.service,
            "sentinel_kwargs": sentinel_kwargs,
            "db": target.db,
            **{name: value for name, value in target.auth().items() if value is not None},
        }
    return {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [host], "prefix": f"{prefix}asgi", "capacity": 1000, "expiry": 10},
        }
    }


def shared_layer(redis_url: str) -> bool:
    """Whether the channel layer spans processes (Redis, but not a cluster)."""
    return bool(redis_url) and parse_redis_url(redis_url).kind != "cluster"
