"""The Redis clients of the request path pack commands with hiredis: byte for byte what
redis-py's own asyncio packing sends, for every connection kind a URL can ask for."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from redis.exceptions import DataError

from quotas.stores.shared import create_client

COMMANDS = [
    ("EVALSHA", "a" * 40, 0, "", "req_1", 60_000, 2, 1, 1, "gw:rate:t:1:rpm", "s", 10**12, 60_000, 1),
    ("SET", "gw:cache:k", b'\x00\xff{"id": 1}', "PX", 300_000),
    ("HMGET", "gw:quota:1:2026-11", "spent", "reserved"),
    ("CLIENT SETNAME", "gateway"),  # a command name of two words goes as two arguments
    (b"CLIENT SETNAME", "gateway"),
    ("SET", "clé", "värde ✓"),  # text goes as UTF-8
    ("INCRBYFLOAT", "k", 0.25),
]


@pytest.mark.parametrize("url", ["redis://127.0.0.1:1/0", "rediss://127.0.0.1:1/0", "unix:///tmp/none.sock"])
async def test_commands_are_packed_by_hiredis_exactly_as_redis_py_packs_them(url):
    client = create_client(url, timeout=1)
    reference_pool = aioredis.ConnectionPool.from_url(url)
    try:
        packing = client.connection_pool.make_connection()
        reference = reference_pool.make_connection()
        assert type(packing).__name__ == f"Hiredis{type(reference).__name__}"
        assert isinstance(packing, type(reference))
        for command in COMMANDS:
            assert b"".join(packing.pack_command(*command)) == b"".join(reference.pack_command(*command))
        with pytest.raises(DataError):
            packing.pack_command("SET", "k", object())
    finally:
        await client.aclose()
        await reference_pool.aclose()
