"""Django's cache from REDIS_URL (gateway_site/caches.py): django-redis on one server and behind
Sentinel, local memory without Redis or on a cluster; the admin's sessions through it, and an
admin that keeps working when that Redis is down."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.urls import reverse

from bench.redis_topology import OwnedSentinel
from gateway_site.caches import cache_settings, channel_layers
from tests.conftest import redis_url, wait_for

LOCAL = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "gateway"}}


def test_without_redis_the_cache_is_local_memory():
    assert cache_settings("", prefix="gw:", timeout=1.0) == LOCAL


def test_on_a_cluster_the_cache_is_local_memory():
    assert cache_settings("redis+cluster://127.0.0.1:7000,127.0.0.1:7001", prefix="gw:", timeout=1.0) == LOCAL


def test_one_server_uses_django_redis():
    assert cache_settings("rediss://u:p@cache.internal:6380/3", prefix="gw:", timeout=0.5) == {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "rediss://u:p@cache.internal:6380/3",
            "KEY_PREFIX": "gw:django",
            "OPTIONS": {
                "SOCKET_CONNECT_TIMEOUT": 0.5,
                "SOCKET_TIMEOUT": 0.5,
                "IGNORE_EXCEPTIONS": True,
                "CLIENT_CLASS": "gateway_site.cache_clients.OwnKeysClient",
            },
        }
    }


def test_sentinel_uses_django_redis_sentinel_client():
    url = (
        "rediss+sentinel://app:s%40cret@s1:26379,s2:26380/gateway/2?sentinel_password=sp&sentinel_username=su"
    )

    assert cache_settings(url, prefix="gw:", timeout=1.0)["default"] == {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "rediss://app:s%40cret@gateway/2",
        "KEY_PREFIX": "gw:django",
        "OPTIONS": {
            "SOCKET_CONNECT_TIMEOUT": 1.0,
            "SOCKET_TIMEOUT": 1.0,
            "IGNORE_EXCEPTIONS": True,
            "CLIENT_CLASS": "gateway_site.cache_clients.OwnKeysSentinelClient",
            "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
            "SENTINELS": [("s1", 26379), ("s2", 26380)],
            "SENTINEL_KWARGS": {
                "socket_timeout": 1.0,
                "socket_connect_timeout": 1.0,
                "username": "su",
                "password": "sp",
            },
        },
    }


def _keys(url: str, pattern: str) -> list[bytes]:
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        return sorted(client.scan_iter(match=pattern, count=1000))
    finally:
        client.close()


def test_the_cache_and_admin_sessions_live_in_redis(settings, redis_prefix, admin_client):
    url = redis_url()
    settings.CACHES = cache_settings(url, prefix=redis_prefix, timeout=1.0)

    cache.set("answer", 42)
    admin_client.get(reverse("admin:index"))  # a fresh session, saved through the cache
    session_key = admin_client.cookies["sessionid"].value

    assert cache.get("answer") == 42
    assert _keys(url, f"{redis_prefix}django:1:answer") == [f"{redis_prefix}django:1:answer".encode()]
    assert _keys(url, f"{redis_prefix}django:1:*{session_key}") == [
        f"{redis_prefix}django:1:django.contrib.sessions.cached_db{session_key}".encode()
    ]
    assert Session.objects.filter(session_key=session_key).exists()  # and in the database


def _flushes(client: redis.Redis) -> int:
    return int(client.info("commandstats").get("cmdstat_flushdb", {}).get("calls", 0))


def test_clearing_the_cache_deletes_its_own_keys_and_nothing_else(settings, redis_prefix):
    url = redis_url()
    settings.CACHES = cache_settings(url, prefix=redis_prefix, timeout=1.0)
    client = redis.Redis.from_url(url, socket_timeout=5)
    neighbours = {  # what shares the database: a quota, the usage outbox, a look-alike prefix
        f"{redis_prefix}{{t7}}:q3:m2026-12": {b"spent": b"1234", b"reserved": b"0"},
        f"{redis_prefix}djangoesque:1:answer": {b"v": b"kept"},
        f"{redis_prefix}django": {b"v": b"the prefix itself, without the separator"},
    }
    for name, fields in neighbours.items():
        client.hset(name, mapping=fields)
    client.xadd(f"{redis_prefix}usage:outbox", {"event": "unrecorded"})
    cache.set_many({f"k{i}": i for i in range(1200)})  # more than one SCAN page
    cache.set("answer", 42, version=2)
    flushes = _flushes(client)

    cache.clear()

    assert _keys(url, f"{redis_prefix}django:*") == []
    assert (cache.get("k0"), cache.get("answer", version=2)) == (None, None)
    assert {name: client.hgetall(name) for name in neighbours} == neighbours
    assert [fields for _, fields in client.xrange(f"{redis_prefix}usage:outbox")] == [
        {b"event": b"unrecorded"}
    ]
    assert _flushes(client) == flushes
    client.close()


@pytest.mark.django_db
def test_the_admin_works_while_the_caches_redis_is_down(settings, admin_client):
    settings.CACHES = cache_settings("redis://127.0.0.1:1/0", prefix="gw:", timeout=0.2)

    cache.set("answer", 42)

    assert cache.get("answer") is None
    assert admin_client.get(reverse("admin:index")).status_code == 200
    assert admin_client.get(reverse("admin:quotas_tenant_changelist")).status_code == 200


@pytest.fixture
def sentinel() -> Iterator[OwnedSentinel]:
    try:
        owned = OwnedSentinel().start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield owned
    owned.stop_all()


def test_the_cache_reaches_the_primary_through_sentinel(settings, sentinel):
    settings.CACHES = cache_settings(sentinel.url, prefix="gwtest:", timeout=1.0)

    cache.set("answer", 42)

    # Written to the primary; django-redis's Sentinel client reads from a replica, which
    # replication reaches asynchronously.
    assert wait_for(lambda: cache.get("answer") == 42, timeout=5)
    assert sentinel.primary.client().get("gwtest:django:1:answer") is not None

    sentinel.primary.client().set("gwtest:{t1}:q1:m2026-12", "spent")
    cache.clear()

    assert sentinel.primary.client().get("gwtest:django:1:answer") is None
    assert sentinel.primary.client().get("gwtest:{t1}:q1:m2026-12") == b"spent"


def test_the_channel_layer_is_in_memory_without_redis_or_on_a_cluster():
    memory = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    assert channel_layers("", prefix="gw:") == memory
    assert channel_layers("redis+cluster://127.0.0.1:7000", prefix="gw:") == memory


def test_the_channel_layer_is_channels_redis_on_one_server_or_sentinel():
    assert channel_layers("redis://127.0.0.1:6379/2", prefix="gw:") == {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": ["redis://127.0.0.1:6379/2"],
                "prefix": "gw:asgi",
                "capacity": 1000,
                "expiry": 10,
            },
        }
    }
    sentinel = channel_layers("redis+sentinel://app:pw@s1:26379/gateway/3?sentinel_password=sp", prefix="gw:")
    assert sentinel["default"]["CONFIG"]["hosts"] == [
        {
            "sentinels": [("s1", 26379)],
            "master_name": "gateway",
            "sentinel_kwargs": {"username": None, "password": "sp"},
            "db": 3,
            "username": "app",
            "password": "pw",
        }
    ]
