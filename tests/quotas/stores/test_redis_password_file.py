"""A Redis password read from a file (``password_file=`` in the URL, what ``REDIS_PASSWORD_FILE``
sets): the URL forms, and against a Redis of the test's own that requires a password, every
client kind (blocking, asyncio, Django's cache) logging in with the file's password, and with
the new one after the password and the file are rotated, on its new connections."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.core.cache import caches

from bench.redis_topology import Node, free_port_pair
from gateway_site.caches import cache_settings, channel_layers
from quotas.stores.redis_target import (
    FileCredentials,
    InvalidRedisUrl,
    async_client,
    parse_redis_url,
    split_password_file,
    sync_client,
    with_password_file,
)
from quotas.stores.shared import create_client

FIRST, SECOND = "first-" + "f" * 24, "second-" + "s" * 24


def write(path: Path, value: str) -> None:
    staged = path.with_suffix(".new")
    staged.write_text(value + "\n")
    staged.replace(path)


def test_the_url_names_the_file_instead_of_the_password():
    url = with_password_file("redis://app:old@10.0.0.5:6380/2?ssl_cert_reqs=none", "/run/secrets/redis pw")
    assert url == "redis://app@10.0.0.5:6380/2?ssl_cert_reqs=none&password_file=%2Frun%2Fsecrets%2Fredis+pw"
    assert split_password_file(url) == (
        "redis://10.0.0.5:6380/2?ssl_cert_reqs=none",
        FileCredentials("/run/secrets/redis pw", "app"),
    )
    assert split_password_file("redis://h:1/0") == ("redis://h:1/0", None)
    with pytest.raises(InvalidRedisUrl, match="names no file"):
        split_password_file("redis://h:1/0?password_file=")

    sentinel = parse_redis_url(
        with_password_file("redis+sentinel://s1:26379,s2:26380/gateway/1?sentinel_password=sp", "/pw")
    )
    assert (sentinel.kind, sentinel.service, sentinel.db) == ("sentinel", "gateway", 1)
    assert (sentinel.password, sentinel.sentinel_password) == (None, "sp")
    assert sentinel.auth() == {"credential_provider": FileCredentials("/pw")}
    cluster = parse_redis_url(with_password_file("rediss+cluster://u:x@n1:7000,n2:7001", "/pw"))
    assert cluster.auth() == {"credential_provider": FileCredentials("/pw", "u"), "ssl": True}


def test_the_cache_and_the_channel_layer_take_the_file():
    url = with_password_file("redis://127.0.0.1:6379/4", "/pw")
    cache = cache_settings(url, prefix="gw:", timeout=1.0)["default"]
    assert cache["LOCATION"] == "redis://127.0.0.1:6379/4"
    assert cache["OPTIONS"]["CONNECTION_POOL_KWARGS"] == {"credential_provider": FileCredentials("/pw")}
    assert channel_layers(url, prefix="gw:")["default"]["CONFIG"]["hosts"] == [
        {"address": "redis://127.0.0.1:6379/4", "credential_provider": FileCredentials("/pw")}
    ]


def test_an_unreadable_file_keeps_the_last_password_and_logs_only_its_path(tmp_path, caplog):
    path = tmp_path / "pw"
    credentials = FileCredentials(str(path))
    with pytest.raises(redis.AuthenticationError, match="holds no password"):
        credentials.get_credentials()
    write(path, FIRST)
    assert credentials.get_credentials() == (FIRST,)
    path.unlink()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="quotas.stores.secret_file"):
        assert credentials.get_credentials() == (FIRST,)
        write(path, "")
        assert credentials.get_credentials() == (FIRST,)
        write(path, SECOND + "x" * 65536)  # not cut down to a wrong password
        assert credentials.get_credentials() == (FIRST,)
    assert [r.getMessage() for r in caplog.records] == [
        f"Redis password file {path} cannot be read: FileNotFoundError",
        f"Redis password file {path} is empty",
        f"Redis password file {path} is larger than 65536 bytes",
    ]
    write(path, SECOND)
    assert FileCredentials(str(path), "app").get_credentials() == ("app", SECOND)


@pytest.fixture
def guarded(tmp_path) -> Iterator[tuple[Node, Path]]:
    """A Redis requiring FIRST, and the file holding it."""
    node = Node(port=free_port_pair(), dir=tmp_path / "redis")
    node.dir.mkdir()
    node.start()
    with node.client() as admin:
        admin.config_set("requirepass", FIRST)
    path = tmp_path / "redis-password"
    write(path, FIRST)
    yield node, path
    node.stop()


def rotate(node: Node, path: Path) -> None:
    """The password changed on the server and in the file, and every connection dropped."""
    with redis.Redis(host="127.0.0.1", port=node.port, password=FIRST, socket_timeout=5) as admin:
        admin.config_set("requirepass", SECOND)
        write(path, SECOND)
        admin.client_kill_filter(_type="normal", skipme=True)


def test_clients_log_in_with_the_files_password_after_a_rotation(guarded, settings):
    node, path = guarded
    url = with_password_file(f"redis://127.0.0.1:{node.port}/0", str(path))
    literal = redis.Redis(host="127.0.0.1", port=node.port, password=FIRST, socket_timeout=5)
    blocking = sync_client(url, timeout=5)
    settings.CACHES = cache_settings(url, prefix="gwtest:", timeout=1.0)
    cache = caches.create_connection("default")

    async def asyncio_clients() -> list[object]:
        clients = [async_client(url, timeout=5), create_client(url, timeout=5)]
        answers = [await client.ping() for client in clients]
        rotate(node, path)
        for client in clients:
            with contextlib.suppress(redis.ConnectionError):
                await client.ping()  # the connection the rotation dropped
            answers.append(await client.set("k", "v"))
            await client.aclose()
        return answers

    assert literal.ping() and blocking.ping()
    cache.set("answer", 41)
    assert cache.get("answer") == 41

    assert asyncio.run(asyncio_clients()) == [True, True, True, True]  # logged in before and after

    assert blocking.get("k") == b"v"  # reconnected (redis-py retries a dropped connection)
    cache.set("answer", 42)
    assert cache.get("answer") == 42  # the cache ignores errors: 42 read back means it logged in
    with pytest.raises(redis.AuthenticationError):
        literal.get("k")  # a client holding the old password is refused on its new connection
    blocking.close()
    literal.close()
