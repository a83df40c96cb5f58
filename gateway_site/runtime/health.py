"""What the readiness probe checks: the database and, when configured, Redis, each answering a
trivial query within a second."""

from __future__ import annotations

import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, connection

from quotas.stores.redis_target import async_client


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except DatabaseError:
        return False


async def redis_ok() -> bool:
    client = async_client(settings.REDIS_URL, timeout=1)
    try:
        return bool(await client.ping())
    except (aioredis.RedisError, OSError):
        return False
    finally:
        await client.aclose()


async def database_ok() -> bool:
    return await sync_to_async(_database_ok)()
